"""DICOM as an image source: every real file of pydicom-data decodes or is refused in one line, and the modality
rescale, windows (given and presets), MONOCHROME1 inversion and 16-bit depth behave as a radiologist expects."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lamina.errors import LaminaError
from lamina.inputs import INPUT_TYPES
from lamina.inputs.image_decode import Geometry, decode, describe_error
from lamina.inputs.image_dicom import WINDOWS, DicomError

pydicom = pytest.importorskip("pydicom")


def pydicom_data_files() -> list[Path]:
    """The real DICOM files the pydicom-data wheel installs (its package is ``data_store``)."""
    import data_store

    return sorted(p for p in (Path(data_store.__file__).parent / "data").rglob("*") if p.is_file())


def write_ct(path: Path, stored: np.ndarray, photometric: str = "MONOCHROME2", intercept: float = -1024.0,
             slope: float = 1.0) -> Path:
    """A CT slice of ``stored`` uint16 values (HU = stored · slope + intercept), written by pydicom."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = CTImageStorage, meta.MediaStorageSOPInstanceUID, "CT"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = intercept, slope
    ds.PixelData = stored.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_every_pydicom_data_file_decodes_or_is_refused_in_one_line() -> None:
    files = pydicom_data_files()
    assert len(files) >= 60, files
    decoded, refused = 0, []
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about the deliberately odd files
            try:
                array = decode(str(path), Geometry(24, 24, 1, "pad", 16))
            except DicomError as error:
                line = describe_error(error)
                assert "\n" not in line and 20 < len(line) < 320, line
                refused.append(path.name)
                continue
        assert array.shape == (1, 24, 24) and array.dtype == np.uint16, path.name
        assert array.max() > 0, path.name  # a picture, not a blank
        decoded += 1
    assert decoded >= 55, refused  # CT, MR, CR (MONOCHROME1), US (RGB, YBR, palette), NM; JPEG 2000 and RLE
    assert "emri_small_jpeg_2k_lossless_too_short.dcm" in refused  # truncated: no pixel data


def test_a_refused_file_is_one_line_naming_it(tmp_path: Path) -> None:
    files = {p.name: p for p in pydicom_data_files()}
    good, bad = str(files["CT_small.dcm" if "CT_small.dcm" in files else "693_UNCR.dcm"]), str(files["JPEG-LL.dcm"])
    t = INPUT_TYPES["image"]("scan", INPUT_TYPES["image"].Options(size=16))
    with pytest.raises(LaminaError) as caught:
        t.fit(pd.Series([good, bad]))
    text = str(caught.value)
    assert "\n" not in text and "JPEG-LL.dcm" in text and "row 2" in text and "transfer syntax" in text, text


def test_rescale_window_and_monochrome1(tmp_path: Path) -> None:
    hu = np.array([[-1000, -600, 0, 40], [80, 400, 1000, 2000]], dtype=np.float64)
    stored = hu + 1024
    ct = write_ct(tmp_path / "ct.dcm", stored)
    geometry = Geometry(2, 4, 1, "pad", 16, (40.0, 80.0))  # the brain window: 0..80 HU
    got = decode(str(ct), geometry)[0].astype(np.float64) / 65535
    expected = np.clip(hu / 80, 0, 1)
    assert np.abs(got - expected).max() < 1e-4
    inverted = decode(str(write_ct(tmp_path / "m1.dcm", stored, "MONOCHROME1")), geometry)[0] / 65535
    assert np.abs(inverted - (1 - expected)).max() < 1e-4
    lung = decode(str(ct), Geometry(2, 4, 1, "pad", 16, "lung"))[0] / 65535
    center, width = WINDOWS["lung"]
    assert np.abs(lung - np.clip((hu - center + width / 2) / width, 0, 1)).max() < 1e-4
    # the slope counts: stored values of half the HU, doubled by the rescale, give the same picture
    halved = write_ct(tmp_path / "half.dcm", (hu + 1024) / 2, slope=2.0, intercept=-1024.0)
    assert np.abs(decode(str(halved), geometry)[0] / 65535 - expected).max() < 1e-4


def test_sixteen_bits_keep_the_grey_levels_eight_bits_lose(tmp_path: Path) -> None:
    ramp = np.linspace(0, 2000, 64 * 64).reshape(64, 64)  # 2000 HU of soft gradient: far more than 256 levels
    path = str(write_ct(tmp_path / "ramp.dcm", ramp))
    scan = INPUT_TYPES["image"]
    deep = scan("scan", scan.Options(size=64, bits=16, window=[1000 - 1024, 2000]))
    deep.fit(pd.Series([path]))
    x = deep.transform(pd.Series([path]))
    assert x.dtype == torch.uint16 and len(np.unique(x.numpy())) > 2000
    shallow = scan("scan", scan.Options(size=64, window=[1000 - 1024, 2000]))
    shallow.fit(pd.Series([path]))
    assert shallow.transform(pd.Series([path])).dtype == torch.uint8
    # the encoder normalises both to the same scale
    deep_encoder, shallow_encoder = deep.encoder().eval(), shallow.encoder().eval()
    a = deep_encoder._prepared(x)
    b = shallow_encoder._prepared(shallow.transform(pd.Series([path])))
    assert torch.allclose(a, b, atol=0.02)
    with pytest.raises(ValueError, match="width"):
        scan.Options(window=[40, 0])

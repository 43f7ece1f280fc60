"""The input layer: one module per input type. Adding a type is one module and one line here."""

from lamina.inputs.audio import AudioInput
from lamina.inputs.base import InputType
from lamina.inputs.binary import BinaryInput
from lamina.inputs.category import CategoryInput
from lamina.inputs.image import ImageInput
from lamina.inputs.number import NumberInput
from lamina.inputs.set import SetInput
from lamina.inputs.text import TextInput
from lamina.inputs.timeseries import TimeseriesInput

INPUT_TYPES: dict[str, type[InputType]] = {t.kind: t for t in (NumberInput, CategoryInput, BinaryInput, SetInput, ImageInput,
                                                  TextInput, AudioInput, TimeseriesInput)}

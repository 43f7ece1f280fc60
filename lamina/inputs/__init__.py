"""The input layer: one module per input type. A built-in type is one module and one line here; a type from another
package registers through the ``lamina.inputs`` entry-point group (``lamina.registry``)."""

from lamina.inputs.audio import AudioInput
from lamina.inputs.base import InputType
from lamina.inputs.binary import BinaryInput
from lamina.inputs.category import CategoryInput
from lamina.inputs.image import ImageInput
from lamina.inputs.number import NumberInput
from lamina.inputs.set import SetInput
from lamina.inputs.text import TextInput
from lamina.inputs.timeseries import TimeseriesInput
from lamina.registry import TypeRegistry

INPUT_TYPES = TypeRegistry("lamina.inputs", InputType, [NumberInput, CategoryInput, BinaryInput, SetInput, ImageInput,
                                                        TextInput, AudioInput, TimeseriesInput])

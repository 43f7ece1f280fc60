"""The output layer: one module per output type. A built-in type is one module and one line here; a type from another
package registers through the ``lamina.outputs`` entry-point group (``lamina.registry``)."""

from lamina.outputs.base import OutputType
from lamina.outputs.binary import BinaryOutput
from lamina.outputs.boxes import BoxesOutput
from lamina.outputs.category import CategoryOutput
from lamina.outputs.identity import IdentityOutput
from lamina.outputs.mask import MaskOutput
from lamina.outputs.number import NumberOutput
from lamina.outputs.text import TextOutput
from lamina.registry import TypeRegistry

OUTPUT_TYPES = TypeRegistry("lamina.outputs", OutputType, [
    CategoryOutput, BinaryOutput, NumberOutput, TextOutput, IdentityOutput, MaskOutput, BoxesOutput,
])

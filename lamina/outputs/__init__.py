"""The output layer: one module per output type. Adding a type is one module and one line here."""

from lamina.outputs.base import OutputType
from lamina.outputs.binary import BinaryOutput
from lamina.outputs.category import CategoryOutput
from lamina.outputs.number import NumberOutput
from lamina.outputs.text import TextOutput

OUTPUT_TYPES: dict[str, type[OutputType]] = {t.kind: t for t in (CategoryOutput, BinaryOutput, NumberOutput, TextOutput)}

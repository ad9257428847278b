"""Turn an FP classifier into a quantized model made of named blocks.

The FP model is traced with ``torch.fx``. Each conv or linear call in the traced graph
starts a block, and the block runs until the next one: the quantized layer, then the
ReLU, BatchNorm, pooling and flattening that follow it. Ops before the first layer
belong to the first block. A block is named after its layer's module (for example
``features.conv1``). Blocks are ordered by their position in the forward graph, so the
first and last layers are those the forward pass calls first and last, whatever the
order in which the model registers its modules.

Quantized models simulate inference. BatchNorm becomes ``FrozenBatchNorm`` and dropout
is removed, so training mode (which AdaRound and QDrop use) computes the same FP ops as
eval mode. The logits, the output of the last layer, are not quantized.
"""

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field

from torch import Tensor, fx, nn

from fingerquant.quant.layers import (
    BATCH_NORM_TYPES,
    QUANT_LAYER_TYPES,
    FrozenBatchNorm,
    QuantLayer,
    make_quant_layer,
)
from fingerquant.quant.quantizer import validate_bits
from fingerquant.quant.range_search import RangeSearchConfig

DROPOUT_TYPES = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)


@dataclass(frozen=True)
class ModelQuantConfig:
    """Bit widths and range search settings of a quantized model.

    Attributes:
        w_bits: weight bit width of the inner layers.
        a_bits: input bit width of the inner layers.
        first_last_bits: weight and input bit width of the first and the last layer. The
            first layer's input is the model input.
        range_search: settings of the Lp range search for weights and activations.
    """

    w_bits: int = 4
    a_bits: int = 4
    first_last_bits: int = 8
    range_search: RangeSearchConfig = field(default_factory=RangeSearchConfig)

    def __post_init__(self) -> None:
        validate_bits(self.w_bits, "w_bits")
        validate_bits(self.a_bits, "a_bits")
        validate_bits(self.first_last_bits, "first_last_bits")


class QuantBlock(nn.Module):
    """One quantized layer with the FP ops around it: ``post(layer(pre(x)))``.

    Attributes:
        name: qualified name of the layer's module in the FP model.
        pre: FP ops before the layer. They are empty except in the first block of a model
            that transforms its input before the first layer.
        layer: the quantized conv or linear layer.
        post: FP ops after the layer, up to the input of the next layer or the model output.
    """

    def __init__(self, name: str, pre: nn.Module, layer: QuantLayer, post: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.pre = pre
        self.layer = layer
        self.post = post

    def set_quant_state(self, weight_quant: bool, act_quant: bool) -> None:
        """Enable or disable weight and input quantization of this block's layer."""
        self.layer.set_quant_state(weight_quant, act_quant)

    def forward(self, x: Tensor, fp_input: Tensor | None = None) -> Tensor:
        """Run the block.

        ``fp_input``, the FP model's input to this block, feeds QDrop in training mode.
        """
        if fp_input is not None:
            fp_input = self.pre(fp_input)
        return self.post(self.layer(self.pre(x), fp_input=fp_input))

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class QuantizedModel(nn.Module):
    """A chain of quantized blocks, first to last in forward order.

    Modes: ``set_quant_state(False, False)`` gives the FP model, ``(True, True)`` the
    fake-quantized one, and ``block(name).set_quant_state`` switches one block.
    """

    def __init__(self, blocks: list[QuantBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)

    @property
    def block_names(self) -> list[str]:
        return [block.name for block in self.blocks]

    def block(self, name: str) -> QuantBlock:
        """Return the block named ``name``."""
        for block in self.blocks:
            if block.name == name:
                return block
        raise KeyError(f"no block named {name!r}: expected one of {', '.join(self.block_names)}.")

    def layers(self) -> Iterator[QuantLayer]:
        """Yield the quantized layers, first to last."""
        for block in self.blocks:
            yield block.layer

    def set_quant_state(self, weight_quant: bool, act_quant: bool) -> None:
        """Enable or disable weight and input quantization in every block."""
        for block in self.blocks:
            block.set_quant_state(weight_quant, act_quant)

    def forward_blocks(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        """Run ``blocks[start:stop]`` on ``x``, the input of block ``start``."""
        for block in self.blocks[start:stop]:
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_blocks(x)


def _replace_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child_name = name.rpartition(".")
    setattr(root.get_submodule(parent_name), child_name, module)


def _trace(model: nn.Module) -> fx.GraphModule:
    """Trace a copy of ``model`` in eval mode, with BatchNorm frozen and dropout removed."""
    try:
        graph_module = fx.symbolic_trace(copy.deepcopy(model).eval())
    except fx.proxy.TraceError as error:
        raise NotImplementedError(
            f"torch.fx cannot trace {type(model).__name__}: {error}. The blocks come from the "
            "traced graph, so the forward pass must not branch on tensor values."
        ) from error
    for name, module in list(graph_module.named_modules()):
        if isinstance(module, BATCH_NORM_TYPES):
            _replace_module(graph_module, name, FrozenBatchNorm(module))
        elif isinstance(module, DROPOUT_TYPES):
            _replace_module(graph_module, name, nn.Identity())
    return graph_module


def _find_layers(graph_module: fx.GraphModule) -> list[fx.Node]:
    """Return the conv and linear call nodes in forward order.

    Raises:
        NotImplementedError: for a module with parameters that is neither a supported
            layer nor BatchNorm, a parameter read directly by the forward pass, or a layer
            called more than once.
    """
    parameter_names = {name for name, _ in graph_module.named_parameters()}
    supported = ", ".join(t.__name__ for t in QUANT_LAYER_TYPES)
    layers = []
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.target in parameter_names:
            raise NotImplementedError(
                f"the forward pass reads parameter {node.target!r} directly, as a functional "
                f"layer does: only modules of type {supported} can be quantized."
            )
        if node.op != "call_module":
            continue
        module = graph_module.get_submodule(node.target)
        if type(module) in QUANT_LAYER_TYPES:
            layers.append(node)
        elif any(True for _ in module.parameters()) and not isinstance(module, BATCH_NORM_TYPES):
            raise NotImplementedError(
                f"layer {node.target!r} of type {type(module).__name__} cannot be quantized: "
                f"supported layer types are {supported}."
            )

    targets = [node.target for node in layers]
    for target in targets:
        if targets.count(target) > 1:
            raise NotImplementedError(
                f"layer {target!r} is called {targets.count(target)} times in the forward pass: "
                "a shared layer cannot get one quantizer per call."
            )
    return layers


def _split_segments(graph_module: fx.GraphModule, layers: list[fx.Node]) -> list[list[fx.Node]]:
    """Split the graph into segments: one for the input, then one per layer.

    The first segment contains the placeholder and the ops before the first layer. Every
    other segment starts with its layer and contains the ops up to the next layer.

    Raises:
        NotImplementedError: unless the model is a chain, where a layer takes one input
            from the segment just before it and every other value stays in its segment.
    """
    placeholders = [node for node in graph_module.graph.nodes if node.op == "placeholder"]
    if len(placeholders) != 1:
        raise NotImplementedError(
            f"the model's forward takes {len(placeholders)} inputs: "
            "only models with one input tensor are supported."
        )
    for layer in layers:
        if len(layer.args) != 1 or layer.kwargs:
            raise NotImplementedError(
                f"layer {layer.target!r} must be called with one input tensor."
            )

    layer_set = set(layers)
    segments: list[list[fx.Node]] = [[]]
    output = None
    for node in graph_module.graph.nodes:
        if node.op == "output":
            output = node
            continue
        if node in layer_set:
            segments.append([])
        segments[-1].append(node)
    assert output is not None, "a traced graph always ends in an output node"

    segment_of = {node: index for index, segment in enumerate(segments) for node in segment}
    consumers = [(node, segment_of[node]) for node in segment_of] + [(output, len(segments) - 1)]
    for node, index in consumers:
        expected = index - 1 if node in layer_set else index
        for source in node.all_input_nodes:
            if segment_of[source] != expected:
                raise NotImplementedError(
                    f"node {node.name!r} uses {source.name!r} from another block: only chain "
                    "models, where each block feeds only the next one, can be split into blocks."
                )
    return segments


def _subgraph(
    root: fx.GraphModule, input_node: fx.Node, nodes: list[fx.Node], output_node: fx.Node
) -> nn.Module:
    """Return the ops ``nodes`` of ``root`` as a module from ``input_node`` to ``output_node``."""
    if not nodes:
        assert output_node is input_node, "an empty segment must pass its input through"
        return nn.Identity()
    graph = fx.Graph()
    env = {input_node: graph.placeholder("x")}
    for node in nodes:
        env[node] = graph.node_copy(node, lambda source: env[source])
    graph.output(env[output_node])
    return fx.GraphModule(root, graph)


def quantize_model(model: nn.Module, config: ModelQuantConfig | None = None) -> QuantizedModel:
    """Build the quantized counterpart of an FP model, leaving ``model`` unchanged.

    Weight quantizers start at the Lp-searched range with round-to-nearest. Input
    quantizers start uncalibrated, and all quantization starts disabled, so the result
    computes the FP model until ``calibrate_activation_ranges`` has run.

    Raises:
        NotImplementedError: for a layer type without a quantized class, a model that
            torch.fx cannot trace, or a model that is not a chain of layers (see
            ``_split_segments``).
        ValueError: when the model has no conv or linear layer.
    """
    config = config or ModelQuantConfig()
    graph_module = _trace(model)
    layers = _find_layers(graph_module)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no Conv2d or Linear layer: there is nothing to quantize."
        )
    segments = _split_segments(graph_module, layers)
    output_node = next(node for node in graph_module.graph.nodes if node.op == "output")
    block_inputs = [layer.args[0] for layer in layers] + [output_node.args[0]]

    placeholder, *pre_nodes = segments[0]
    blocks = []
    for index, layer_node in enumerate(layers):
        is_first_or_last = index in (0, len(layers) - 1)
        weight_bits = config.first_last_bits if is_first_or_last else config.w_bits
        act_bits = config.first_last_bits if is_first_or_last else config.a_bits
        layer = make_quant_layer(
            layer_node.target,
            graph_module.get_submodule(layer_node.target),
            weight_bits,
            act_bits,
            config.range_search,
        )
        if index == 0:
            pre = _subgraph(graph_module, placeholder, pre_nodes, block_inputs[0])
        else:
            pre = nn.Identity()
        post_nodes = segments[index + 1][1:]
        post = _subgraph(graph_module, layer_node, post_nodes, block_inputs[index + 1])
        blocks.append(QuantBlock(layer_node.target, pre, layer, post))
    return QuantizedModel(blocks)

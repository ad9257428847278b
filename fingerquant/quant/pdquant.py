"""PD-Quant post-training quantization as a LightningModule with manual optimization.

Stage 1 (``calibrate``) sets the activation ranges layer by layer, first to
last, with the Lp search and an EMA over calibration batches. Weight ranges come
from the same search when the model is wrapped. Stage 2 (``fit``) runs, block
by block, distribution correction of the block's FP input and then
reconstruction of its AdaRound rounding and activation step sizes:

    L_recon = L_reg + L_PD / lambda_r + L_round

One training step is one iteration of one phase (see ``schedule.py``), and each
phase steps its own optimizer, returned by ``configure_optimizers``, so
``trainer.global_step`` counts iterations across all blocks and phases.
"""

import copy
import logging
import math
import pickle
from pathlib import Path

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from fingerquant.errors import DataError
from fingerquant.models import create_model
from fingerquant.quant.calibrate import calibrate_activation_ranges
from fingerquant.quant.correction import batch_norms, correction_loss
from fingerquant.quant.dead_channels import freeze_dead_channels
from fingerquant.quant.losses import (
    BetaSchedule,
    lp_loss,
    prediction_difference_loss,
    rounding_loss,
)
from fingerquant.quant.methods import Method, components
from fingerquant.quant.range_search import RangeSearchConfig
from fingerquant.quant.schedule import Phase, Schedule
from fingerquant.quant.wrap import ModelQuantConfig, quantize_model

logger = logging.getLogger(__name__)

RANGE_BATCH_SIZE = 256
"""Calibration touches per batch of the stage-1 range search; the EMA combines the batches."""


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite; the message names block, phase and iteration."""


def load_classifier(path: str) -> tuple[nn.Module, dict]:
    """Load the FP network and hyperparameters of a checkpoint written by ``train.py``.

    The network is built from the registry and its weights loaded directly: a
    ``Classifier`` created here would record the running LightningCLI's
    arguments as its own hyperparameters.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"Checkpoint not found: {path}. Pass --model.checkpoint FILE.ckpt.")
    try:
        stored = torch.load(path, map_location="cpu", weights_only=False)
        hparams = dict(stored["hyper_parameters"])
        network = create_model(hparams["model"], hparams["num_classes"])
        prefix = "model."
        state = {
            k[len(prefix) :]: v for k, v in stored["state_dict"].items() if k.startswith(prefix)
        }
        network.load_state_dict(state)
    except (
        KeyError,
        TypeError,
        RuntimeError,
        ValueError,
        pickle.UnpicklingError,
        EOFError,
    ) as error:
        raise DataError(
            f"{path}: not a classifier checkpoint written by train.py ({error})."
        ) from error
    return network.eval(), hparams


class PDQuantModule(L.LightningModule):
    """Quantize a trained classifier with PD-Quant or one of its ablations.

    Args:
        checkpoint: FP classifier checkpoint written by ``train.py``.
        method: ``rtn``, ``adaround``, ``brecq``, ``qdrop`` or ``pdquant`` (see ``methods.py``).
        w_bits: Weight bits of the inner layers (2 to 8).
        a_bits: Input bits of the inner layers (2 to 8).
        first_last_bits: Bits of the first and last layer and of the model input.
        recon_iters: Reconstruction iterations per block.
        dc_iters: Distribution-correction iterations per block with BatchNorm.
        calib_size: Calibration touches drawn from the training split.
        recon_batch_size: Calibration touches per reconstruction iteration.
        lambda_r: lambda_r, the PD loss enters as ``L_PD / lambda_r``.
        lambda_c: lambda_c, the DC input term enters as ``MSE / lambda_c``.
        temperature: T, softening of both predictions in ``L_PD``.
        p: Exponent of ``L_reg``; None takes the method's default (2.4 for PD-Quant, else 2).
        drop_prob: QDrop probability of taking an input element from the FP path.
        round_weight: w, weight of ``L_round``.
        beta_range: (start, end) of the annealed rounding exponent beta.
        warmup: Share of reconstruction iterations before ``L_round`` and the beta decay start.
        weight_lr: Adam learning rate of the AdaRound variables alpha.
        act_lr: Adam learning rate of the step sizes s_a, with cosine decay. They are
            stored as log(s_a), so the rate applied is ``act_lr / s_a`` at the block's start.
        dc_lr: Adam learning rate of the corrected inputs.
        range_p: Exponent p of the Lp range search of stage 1.
        bias_correction: End stage 1 by subtracting from each layer's bias the mean
            error of its round-to-nearest output per channel on the calibration set
            (Nagel et al., 2019), so that no method starts from a systematic shift.
        seed: Seed of the calibration set and of the mini-batch order.
        log_every_n_iters: Iterations between two TensorBoard points of each loss curve.
    """

    def __init__(
        self,
        checkpoint: str,
        method: Method = "pdquant",
        w_bits: int = 4,
        a_bits: int = 4,
        first_last_bits: int = 8,
        recon_iters: int = 2000,
        dc_iters: int = 100,
        calib_size: int = 1024,
        recon_batch_size: int = 32,
        lambda_r: float = 0.1,
        lambda_c: float = 0.02,
        temperature: float = 4.0,
        p: float | None = None,
        drop_prob: float = 0.5,
        round_weight: float = 0.01,
        beta_range: tuple[float, float] = (20.0, 2.0),
        warmup: float = 0.2,
        weight_lr: float = 3e-3,
        act_lr: float = 4e-5,
        dc_lr: float = 1e-3,
        range_p: float = 2.4,
        bias_correction: bool = True,
        seed: int = 0,
        log_every_n_iters: int = 10,
    ) -> None:
        super().__init__()
        self.components = components(method)
        for name, value in (("recon_iters", recon_iters), ("dc_iters", dc_iters)):
            if value < 0:
                raise ValueError(f"Invalid {name} {value}: expected 0 or more iterations.")
        for name, value in (
            ("calib_size", calib_size),
            ("recon_batch_size", recon_batch_size),
            ("log_every_n_iters", log_every_n_iters),
        ):
            if value < 1:
                raise ValueError(f"Invalid {name} {value}: expected at least 1.")
        for name, value in (
            ("lambda_r", lambda_r),
            ("lambda_c", lambda_c),
            ("temperature", temperature),
        ):
            if value <= 0:
                raise ValueError(f"Invalid {name} {value}: expected a positive number.")
        if p is not None and p <= 0:
            raise ValueError(f"Invalid p {p}: expected a positive exponent such as 2.4.")
        self.save_hyperparameters()
        self.automatic_optimization = False

        network, fp_hparams = load_classifier(checkpoint)
        self.task = fp_hparams.get("task")
        self.model_name = fp_hparams["model"]
        self.num_classes = fp_hparams["num_classes"]
        self.class_names = list(fp_hparams.get("class_names") or [])
        self.fp_state = {key: value.clone() for key, value in network.state_dict().items()}

        config = ModelQuantConfig(
            w_bits=w_bits,
            a_bits=a_bits,
            first_last_bits=first_last_bits,
            range_search=RangeSearchConfig(p=range_p),
        )
        self.quant_config = config
        self.qmodel = quantize_model(network, config)
        self.reference = copy.deepcopy(self.qmodel).requires_grad_(False)
        self.fp_network = network.requires_grad_(False)
        self.p = p if p is not None else self.components.default_p

        self.test_fp_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self.test_quant_acc = MulticlassAccuracy(self.num_classes, average="micro")
        self.test_agreement = MeanMetric()
        self.calibration_size = 0
        self.schedule = Schedule([])
        self._state: dict[str, Tensor] = {}

    @property
    def block_names(self) -> list[str]:
        return self.qmodel.block_names

    def calibrate(self, images: Tensor) -> None:
        """Run stage 1 on the calibration set and prepare the schedule of stage 2.

        ``images`` (N, 1, 8, 8) may hold fewer touches than ``calib_size``; the
        size used is kept in ``calibration_size`` for the results.
        """
        if len(images) < self.hparams.calib_size:
            logger.warning(
                "Calibration set contains %d touches, fewer than calib_size=%d, so all of "
                "them are used.",
                len(images),
                self.hparams.calib_size,
            )
        if len(images) < self.hparams.recon_batch_size and self.components.reconstruct:
            logger.warning(
                "Calibration set of %d touches is smaller than recon_batch_size=%d; every "
                "reconstruction iteration uses the whole set.",
                len(images),
                self.hparams.recon_batch_size,
            )
        self.calibration_size = len(images)
        self.calibration = images.detach().clone()

        self.dead_channels = freeze_dead_channels([self.reference, self.qmodel], self.calibration)
        calibrate_activation_ranges(self.qmodel, self.calibration.split(RANGE_BATCH_SIZE))
        if self.hparams.bias_correction:
            self._correct_biases()
        self.qmodel.set_quant_state(weight_quant=False, act_quant=False)
        with torch.no_grad():
            self.fp_logits = self.reference(self.calibration)

        iterations = []
        for block in self.qmodel.blocks:
            has_norm = bool(batch_norms(block))
            dc = (
                self.hparams.dc_iters if self.components.distribution_correction and has_norm else 0
            )
            recon = self.hparams.recon_iters if self.components.reconstruct else 0
            iterations.append((dc, recon))
            if recon:
                block.layer.use_adaround()
            block.layer.input_quantizer.drop_prob = (
                self.hparams.drop_prob if self.components.qdrop else 0.0
            )
        self.schedule = Schedule(iterations)

        self._fp_input = self.calibration
        self._quant_input = self.calibration
        self._dc_inputs = self._allocate_dc_inputs()
        if self.schedule.total_steps == 0:
            for index in range(len(self.qmodel.blocks)):
                self._finish_block(index)

    @torch.no_grad()
    def _correct_biases(self) -> None:
        """Shift each layer's bias by the mean error of its quantized output, first to last."""
        quant_input = fp_input = self.calibration
        for block, reference in zip(self.qmodel.blocks, self.reference.blocks, strict=True):
            error = block.layer(block.pre(quant_input)) - reference.layer(reference.pre(fp_input))
            if block.layer.bias is not None:
                block.layer.module.bias -= error.mean(dim=[0, *range(2, error.dim())])

            quant_input = block(quant_input)
            fp_input = reference(fp_input)

    def _allocate_dc_inputs(self) -> dict[int, Tensor]:
        """Create the trainable corrected inputs, one per block that runs DC."""
        shapes = {}
        x = self.calibration
        with torch.no_grad():
            for index, block in enumerate(self.reference.blocks):
                shapes[index] = x.shape
                x = block(x)
        return {
            phase.block: torch.zeros(shapes[phase.block], requires_grad=True)
            for phase in self.schedule.phases
            if phase.kind == "dc"
        }

    def train_dataloader(self) -> DataLoader:
        """Return one item per step of the schedule: the global step index."""
        return DataLoader(torch.arange(self.schedule.total_steps), batch_size=None, shuffle=False)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """Return one optimizer per phase, in schedule order, with LR schedules kept aside."""
        optimizers, self._schedulers = [], []
        for phase in self.schedule.phases:
            layer = self.qmodel.blocks[phase.block].layer
            if phase.kind == "dc":
                optimizer = torch.optim.Adam([self._dc_inputs[phase.block]], lr=self.hparams.dc_lr)
                scheduler = None
            else:
                groups = [{"params": [layer.weight_quantizer.alpha], "lr": self.hparams.weight_lr}]
                if self.components.learn_act_scale:
                    scale = layer.input_quantizer.scale.item()
                    groups.append(
                        {
                            "params": [layer.input_quantizer.log_scale],
                            "lr": self.hparams.act_lr / scale,
                        }
                    )
                optimizer = torch.optim.Adam(groups)
                iters = phase.iters
                cosine = lambda t, n=iters: 0.5 * (1 + math.cos(math.pi * t / n))  # noqa: E731
                lambdas = [lambda t: 1.0, cosine][: len(groups)]
                scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)
            optimizers.append(optimizer)
            self._schedulers.append(scheduler)
        return optimizers

    def training_step(self, step: Tensor, batch_idx: int) -> None:
        step = int(step)
        phase = self.schedule.phase_at(step)
        iteration = step - phase.start
        phase_index = self.schedule.phases.index(phase)
        optimizers = self.optimizers()
        optimizer = optimizers[phase_index] if isinstance(optimizers, list) else optimizers
        if iteration == 0:
            self._begin(phase)

        terms = self._dc_terms(phase) if phase.kind == "dc" else self._recon_terms(phase, iteration)
        self._check_finite(terms, phase, iteration)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(terms["total"])
        optimizer.step()
        scheduler = self._schedulers[phase_index]
        if scheduler is not None:
            scheduler.step()

        if iteration % self.hparams.log_every_n_iters == 0 or iteration == phase.iters - 1:
            self._log_terms(phase, iteration, step, terms, optimizer)
        self.log("block", float(phase.block), prog_bar=True, logger=False)
        self.log("iter", float(iteration), prog_bar=True, logger=False)
        if iteration == phase.iters - 1:
            self._end(phase)

    def _begin(self, phase: Phase) -> None:
        """Prepare the inputs and targets of a phase at its first iteration."""
        block = phase.block
        if phase.kind == "dc":
            with torch.no_grad():
                self._dc_inputs[block].copy_(self._fp_input)
            return

        fp_input = self._state.get("corrected", self._fp_input)
        reference = self.reference.blocks[block]
        with torch.no_grad():
            if self.components.layer_output:
                target = reference.layer(reference.pre(fp_input))
            else:
                target = reference(fp_input)
        qblock = self.qmodel.blocks[block]
        qblock.set_quant_state(weight_quant=True, act_quant=True)
        qblock.train()
        self._state.update(fp_input=fp_input, target=target)
        self._beta = BetaSchedule(phase.iters, tuple(self.hparams.beta_range), self.hparams.warmup)
        self._batches = torch.Generator().manual_seed(self.hparams.seed * 1000 + block)

    def _dc_terms(self, phase: Phase) -> dict[str, Tensor]:
        corrected = self._dc_inputs[phase.block]
        return correction_loss(
            self.reference.blocks[phase.block], corrected, self._fp_input, self.hparams.lambda_c
        )

    def _recon_terms(self, phase: Phase, iteration: int) -> dict[str, Tensor]:
        """Return the reconstruction loss terms of one mini-batch."""
        size = len(self.calibration)
        index = torch.randperm(size, generator=self._batches)[
            : min(self.hparams.recon_batch_size, size)
        ]
        quant_input = self._quant_input[index]
        fp_input = self._state["fp_input"][index] if self.components.qdrop else None
        qblock = self.qmodel.blocks[phase.block]
        if self.components.layer_output:
            fp_pre = None if fp_input is None else qblock.pre(fp_input)
            output = qblock.layer(qblock.pre(quant_input), fp_input=fp_pre)
        else:
            output = qblock(quant_input, fp_input=fp_input)

        zero = output.new_zeros(())
        terms = {"reg": lp_loss(pred=output, target=self._state["target"][index], p=self.p)}
        if self.components.prediction_difference:
            logits = self.reference.forward_blocks(output, start=phase.block + 1)
            terms["pd"] = prediction_difference_loss(
                quant_logits=logits,
                fp_logits=self.fp_logits[index],
                temperature=self.hparams.temperature,
            )
        else:
            terms["pd"] = zero
        beta = self._beta(iteration)
        if self._beta.in_warmup(iteration):
            terms["round"] = zero
        else:
            h = qblock.layer.weight_quantizer.soft_rounding()
            terms["round"] = rounding_loss(h=h, beta=beta, round_weight=self.hparams.round_weight)
        terms["total"] = terms["reg"] + terms["pd"] / self.hparams.lambda_r + terms["round"]
        terms["beta"] = torch.tensor(beta)
        return terms

    def _end(self, phase: Phase) -> None:
        """Keep the corrected input after DC; harden and freeze the block after its last phase."""
        if phase.kind == "dc":
            self._state["corrected"] = self._dc_inputs.pop(phase.block).detach()
        if self.schedule.last_phase_of(phase.block) is phase:
            self._finish_block(phase.block)

    def _finish_block(self, index: int) -> None:
        """Fix the block's quantization and move both input paths to the next block."""
        qblock = self.qmodel.blocks[index]
        quantizer = qblock.layer.weight_quantizer
        if hasattr(quantizer, "harden"):
            quantizer.harden()
        qblock.layer.input_quantizer.log_scale.requires_grad_(False)
        qblock.set_quant_state(weight_quant=True, act_quant=True)
        qblock.eval()
        self._check_scales(index)
        with torch.no_grad():
            self._quant_input = qblock(self._quant_input)
            self._fp_input = self.reference.blocks[index](self._fp_input)
        self._state.clear()

    def _check_finite(self, terms: dict[str, Tensor], phase: Phase, iteration: int) -> None:
        for name, value in terms.items():
            if not torch.isfinite(value).all():
                raise NonFiniteLossError(
                    f"Loss term {name!r} is {float(value.detach())} in block "
                    f"{self.block_names[phase.block]!r}, "
                    f"phase {phase.kind}, iteration {iteration}. Lower the learning rates "
                    "(weight_lr, act_lr, dc_lr) or raise lambda_r and lambda_c."
                )

    def _check_scales(self, index: int) -> None:
        layer = self.qmodel.blocks[index].layer
        scales = [layer.input_quantizer.scale, layer.weight_quantizer.scale]
        if not all(bool(torch.isfinite(s).all() and (s > 0).all()) for s in scales):
            raise NonFiniteLossError(
                f"Block {self.block_names[index]!r} ended with a non-positive or non-finite scale."
            )

    def _log_terms(
        self, phase: Phase, iteration: int, step: int, terms: dict[str, Tensor], optimizer
    ) -> None:
        """Write each loss term and learning rate to TensorBoard at the global step."""
        if self.logger is None:
            return
        writer = self.logger.experiment
        name = self.block_names[phase.block]
        for term, value in terms.items():
            tag = f"{phase.kind}/{name}/{term}"
            writer.add_scalar(tag, float(value.detach()), global_step=step)
        groups = ["input"] if phase.kind == "dc" else ["alpha", "scale"]
        for group, param_group in zip(groups, optimizer.param_groups, strict=False):
            writer.add_scalar(
                f"{phase.kind}/{name}/lr_{group}", param_group["lr"], global_step=step
            )

    def check_ready(self) -> None:
        """Raise unless every AdaRound rounding is hard, as evaluation and saving require."""
        soft = [
            block.name
            for block in self.qmodel.blocks
            if hasattr(block.layer.weight_quantizer, "is_hard")
            and not block.layer.weight_quantizer.is_hard
        ]
        if soft:
            raise RuntimeError(
                f"Rounding of blocks {', '.join(soft)} is still soft: run fit() to the end."
            )

    def on_test_start(self) -> None:
        self.check_ready()
        self.qmodel.eval()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        fp_pred = self.fp_network(images).argmax(dim=1)
        quant_pred = self.qmodel(images).argmax(dim=1)
        self.test_fp_acc.update(fp_pred, labels)
        self.test_quant_acc.update(quant_pred, labels)
        self.test_agreement.update((fp_pred == quant_pred).float())
        self.log("test/fp_acc", self.test_fp_acc, on_epoch=True)
        self.log("test/quant_acc", self.test_quant_acc, on_epoch=True)
        self.log("test/agreement", self.test_agreement, on_epoch=True)

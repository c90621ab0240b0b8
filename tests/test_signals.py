"""Ctrl-C while a model loads: held out of torch's and safetensors' callbacks, delivered between tensors."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from ganeditor.core.signals import safe_point, signals_held
from ganeditor.formats import bounded
from ganeditor.formats.bounded import build_checked


@pytest.fixture
def seen():
    """A SIGINT handler that records how deep torch's function-mode stack is when it runs, then raises."""
    log: list[int] = []

    def handler(signum, frame):
        log.append(torch._C._len_torch_function_stack())
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, handler)
    yield log
    signal.signal(signal.SIGINT, old)


def test_a_held_signal_waits_for_a_safe_point(seen):
    with pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # bytecodes where Python would otherwise run the handler
            pass
        assert seen == []
        safe_point()
        raise AssertionError("safe_point() did not deliver the held Ctrl-C")
    assert seen == [0]


def test_a_held_signal_is_delivered_when_the_span_ends_and_handlers_are_restored(seen):
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
        raise AssertionError("the span ended without delivering the held Ctrl-C")
    assert seen == [0] and signal.getsignal(signal.SIGINT) is handler


def test_a_second_ctrl_c_is_not_held(seen):
    with pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))
        raise AssertionError("the second Ctrl-C was held too")
    assert len(seen) == 1


def test_ctrl_c_during_the_meta_build_arrives_after_torch_left_the_meta_device(seen, monkeypatch):
    """The CI failure: interrupted inside torch's mode bookkeeping, the 'meta' device stayed the default,
    the interrupt was lost, and the next model loaded had no data (exit 2 instead of 130)."""
    real = bounded.build

    def build(arch, **kw):
        if torch.empty(0).device.type == "meta":  # the checking build: Ctrl-C now
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))
        return real(arch, **kw)

    monkeypatch.setattr(bounded, "build", build)
    with pytest.raises(KeyboardInterrupt):
        build_checked("cyclegan-resnet-generator", {"input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 1}, None, 1 << 20)
    assert seen == [0], "the handler ran while torch's 'meta' mode was on the stack"
    assert torch.empty(1).device.type == "cpu"

"""The character-level transformer example: the same model code built with gradflow and with
torch from the same initial weights gives the same losses over the first AdamW steps (float64),
and the loss falls."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import gradflow as gf  # noqa: E402
from gradflow.examples import char_transformer as ct  # noqa: E402


def test_first_steps_match_torch_on_the_same_init():
    _, codes, chars = ct.load_text()
    gf.manual_seed(0)
    g_model = ct.make_model(gf, len(chars), dtype="float64")
    t_model = ct.make_model(torch, len(chars)).double()
    g_state = g_model.state_dict()
    t_state = t_model.state_dict()
    assert list(g_state) == list(t_state)
    t_model.load_state_dict({k: torch.tensor(v.numpy()) for k, v in g_state.items()})
    steps = 8
    g_losses = ct.train(gf, g_model, codes, steps, seed=1)
    t_losses = ct.train(torch, t_model, codes, steps, seed=1)
    np.testing.assert_allclose(g_losses, t_losses, rtol=1e-8)
    assert g_losses[-1] < g_losses[0] - 0.3
    for k, v in g_model.state_dict().items():
        np.testing.assert_allclose(v.numpy(), t_model.state_dict()[k].numpy(), rtol=1e-6, atol=1e-9,
                                   err_msg=k)


def test_example_runs_and_samples(capsys):
    ct.main(["--steps", "3"])
    out = capsys.readouterr().out
    assert "parameters" in out and "step    2" in out and "'Alice " in out

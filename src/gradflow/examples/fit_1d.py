"""One hidden layer fits sin on [-pi, pi]: the universal approximation theorem at work."""

import numpy as np

import gradflow as gf
from gradflow import nn


def main(steps=1500, hidden=32, seed=0):
    """Returns the mean squared error on a fresh test grid."""
    gf.manual_seed(seed)
    x, y = gf.data.make_regression_1d(256, fn=np.sin, seed=seed)
    model = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
    optimizer = gf.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  mse {loss.item():.2e}")
    grid = np.linspace(-np.pi, np.pi, 201, dtype=np.float32).reshape(-1, 1)
    with gf.no_grad():
        mse = nn.functional.mse_loss(model(gf.tensor(grid)), gf.tensor(np.sin(grid))).item()
    print(f"test mse {mse:.2e}")
    return mse


if __name__ == "__main__":
    main()

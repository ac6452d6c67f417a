"""Logistic regression as a computation graph, trained by gradient descent written out by hand.

The model is y = sigmoid(w . x + b) on two Gaussian clouds. Every step builds the graph of the
cross-entropy loss, ``loss.backward()`` fills w.grad and b.grad, and the update runs under
``gf.no_grad()`` so that it is not itself recorded.
"""

import numpy as np

import gradflow as gf


def make_blobs(n=200, seed=0):
    """Two classes of 2-D points: N((-1, -1), I) labelled 0 and N((1, 1), I) labelled 1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 1, (n, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return gf.tensor(x, dtype=gf.float32), gf.tensor(y, dtype=gf.float32)


def main(steps=200, lr=0.5):
    """Returns the training accuracy."""
    x, y = make_blobs()
    w = gf.zeros(2, requires_grad=True)
    b = gf.zeros(1, requires_grad=True)
    for step in range(steps):
        p = gf.sigmoid(x @ w + b)
        p = p.clip(1e-7, 1 - 1e-7)  # keeps log finite when a point is classified with certainty
        loss = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
        loss.backward()
        with gf.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad = b.grad = None  # backward accumulates: clear before the next step
        if step % 50 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    with gf.no_grad():
        accuracy = ((gf.sigmoid(x @ w + b) > 0.5).float() == y).float().mean().item()
    print(f"w = {w.detach().tolist()}, b = {b.item():.3f}, accuracy {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()

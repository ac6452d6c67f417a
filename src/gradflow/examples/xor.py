"""Two layers of sigmoid units learn XOR, the classic problem no single linear unit can solve."""

import gradflow as gf
from gradflow import nn


def main(steps=500, seed=0):
    """Returns the fraction of the four XOR points classified correctly."""
    gf.manual_seed(seed)
    x, labels = gf.data.make_xor()
    y = labels.float().reshape(4, 1)
    # The output layer's sigmoid is folded into the loss (BCEWithLogitsLoss) for stability.
    model = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Linear(4, 1))
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = gf.optim.SGD(model.parameters(), lr=1.0, momentum=0.9)
    for step in range(steps):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {loss.item():.5f}")
    with gf.no_grad():
        p = gf.sigmoid(model(x))
    print("x0 x1 -> p(1)")
    for (a, b), pi in zip(x.tolist(), p.reshape(4).tolist()):
        print(f" {a:.0f}  {b:.0f} -> {pi:.3f}")
    return ((p > 0.5).float() == y).float().mean().item()


if __name__ == "__main__":
    main()

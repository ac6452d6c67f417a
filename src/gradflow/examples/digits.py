"""A short MLP classifier on the embedded UCI digits: data, loader, model, loop, accuracy.
(``python -m gradflow.train`` is the full-featured version.)"""

import gradflow as gf
from gradflow import nn


def main(epochs=10, seed=0):
    """Returns the test accuracy."""
    gf.manual_seed(seed)
    x, y = gf.data.load_digits()
    x_train, x_test, y_train, y_test = gf.data.train_test_split(x, y, stratify=y)
    mean, std = x_train.mean(dim=0), x_train.var(dim=0, unbiased=False).sqrt() + 1e-3
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = gf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = gf.data.DataLoader(gf.data.TensorDataset(x_train, y_train), batch_size=32,
                                shuffle=True)
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with gf.no_grad():
            accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1:2d}  last batch loss {loss.item():.4f}  test accuracy {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()

"""Train an MLP classifier on the embedded UCI digits (or MNIST) with minibatch SGD or Adam.

    python -m gradflow.train                      # digits, defaults: >= 97% test accuracy
    python -m gradflow.train --hidden 128,64 --activation gelu --optimizer adam --lr 1e-3
    python -m gradflow.train --dataset mnist --data-dir ~/mnist --epochs 10
    mpiexec -n 2 python -m mpi4py -m gradflow.train --distributed   # data-parallel, 2 ranks

Prints a progress bar with the running loss per epoch, then train/test accuracy; at the end
the test accuracy, seconds per epoch and the checkpoint path. The checkpoint (gf.save) holds
the model's state_dict, the architecture and the input standardisation, so ``load_model``
rebuilds the trained classifier. A fixed --seed gives the same numbers on every run.

With --distributed each rank of the MPI job takes its share (np.array_split) of every global
batch of --batch-size samples, computes ``sum(losses) / global batch size`` over it, and
DistributedDataParallel sums the gradients over ranks: the gradient of the one-process mean
loss, whatever the number of ranks, so the run reaches the same model as one process up to
rounding. Rank 0 prints and writes the checkpoint.
"""

import argparse
import math
import os
import time

import numpy as np
from tqdm import tqdm

import gradflow as gf
from gradflow import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
               "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "softplus": nn.Softplus}


def build_model(in_features, hidden, classes, activation):
    """Linear -> activation for each hidden width, then a Linear to the class logits."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def accuracy(model, x, y):
    """The fraction of rows of ``x`` whose largest logit is the label in ``y``."""
    was_training = model.training
    model.eval()
    with gf.no_grad():
        predicted = model(x).argmax(dim=1)
    model.train(was_training)
    return float((predicted == y).float().mean().item())


def load_model(path, device="cpu"):
    """(model, mean, std) from a checkpoint written by :func:`main`: classify raw inputs x
    with ``model((x - mean) / std)``."""
    ckpt = gf.load(path, map_location=device)
    cfg = ckpt["config"]
    model = build_model(cfg["in_features"], cfg["hidden"], cfg["classes"], cfg["activation"])
    model.to(device).load_state_dict(ckpt["model"])
    return model, ckpt["mean"], ckpt["std"]


# ---- command line --------------------------------------------------------------------------------
def _hidden(text):
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths such as 128,64, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1, got {text!r}")
    return widths


def _number(kind, minimum, strict):
    """An argparse type: ``kind`` (int or float) parsed from text, finite and >= minimum
    (> minimum when ``strict``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value
    return parse


def make_parser():
    """The command line's argument parser (see --help)."""
    p = argparse.ArgumentParser(prog="python -m gradflow.train",
                                description="Train an MLP classifier on the UCI digits or MNIST.")
    p.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (for --dataset mnist)")
    p.add_argument("--hidden", type=_hidden, default=[256, 128], metavar="W1,W2,...",
                   help="hidden layer widths (default: 256,128)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=_number(float, 0, True), default=None,
                   help="learning rate (default: 0.05 for sgd, 0.001 for adam)")
    p.add_argument("--momentum", type=_number(float, 0, False), default=0.9,
                   help="SGD momentum (default: 0.9)")
    p.add_argument("--weight-decay", type=_number(float, 0, False), default=0.0,
                   help="L2 penalty added to the gradient (default: 0)")
    p.add_argument("--epochs", type=_number(int, 1, False), default=20)
    p.add_argument("--batch-size", type=_number(int, 1, False), default=32)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint path (default: checkpoints/<dataset>_mlp.npz)")
    p.add_argument("--plot", metavar="PATH", help="save loss/accuracy curves as a PNG (needs matplotlib)")
    p.add_argument("--threads", type=_number(int, 1, False), help="CPU threads (gf.set_num_threads)")
    p.add_argument("--no-jit", dest="jit", action="store_false",
                   help="run each training step eagerly instead of replaying it with gf.jit "
                        "(the results are the same)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of an MPI job (mpi for CPU, nccl for CUDA "
                        "tensors): mpiexec -n 2 python -m mpi4py -m gradflow.train --distributed")
    return p


LAUNCH_HINT = ("start it with an MPI launcher, e.g. mpiexec -n 2 python -m mpi4py -m "
               "gradflow.train --distributed (or python -m gradflow.distributed.launch -n 2 -- "
               "-m gradflow.train --distributed)")


def _init_distributed(parser, args):
    """The gradflow.distributed module, initialised, or a usage error saying how to launch."""
    from . import distributed
    from .distributed.launch import ranks_on_this_machine
    if not distributed.is_available():
        parser.error('--distributed needs mpi4py: pip install "gradflow[mpi]"; then ' + LAUNCH_HINT)
    if ranks_on_this_machine(os.environ) is None and not any(
            v in os.environ for v in ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")):
        parser.error("--distributed: this process was not started by an MPI launcher; "
                     + LAUNCH_HINT)
    distributed.init_process_group("nccl" if args.device == "cuda" else "mpi")
    return distributed


def _check_environment(parser, args):
    if args.device == "cuda" and not gf.cuda.is_available():
        parser.error(f"--device cuda: no usable GPU: {gf.cuda.unavailable_reason()}")
    if args.dataset == "mnist" and not args.data_dir:
        parser.error("--dataset mnist needs --data-dir, the folder with the MNIST IDX files")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error('--plot needs matplotlib: pip install "gradflow[plot]"')


def _load_data(parser, args):
    """(x_train, y_train, x_test, y_test, mean, std) as numpy arrays: the inputs standardised
    with the training set's per-pixel mean and std (constant pixels are only centred)."""
    if args.dataset == "digits":
        x, y = gf.data.load_digits()
        # A fixed split, independent of --seed, so every run is scored on the same test set.
        x_train, x_test, y_train, y_test = gf.data.train_test_split(x, y, test_fraction=0.2,
                                                                    seed=0, stratify=y)
    else:
        try:
            (x_train, y_train), (x_test, y_test) = gf.data.load_mnist(args.data_dir)
        except (FileNotFoundError, ValueError) as e:
            parser.error(f"--data-dir: {e}")
    x_train, x_test, y_train, y_test = (t.numpy() for t in (x_train, x_test, y_train, y_test))
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std < 1e-6] = 1
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test, mean, std


def _plot(path, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, history["loss"])
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax_acc.plot(epochs, history["train_accuracy"], label="train")
    ax_acc.plot(epochs, history["test_accuracy"], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy")
    ax_acc.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    """Runs the command line ``argv`` (default: sys.argv[1:]); returns a dict with the final
    test_accuracy and train_accuracy, per-epoch history (loss, accuracies, seconds), the mean
    seconds_per_epoch and the checkpoint path. Bad arguments exit with status 2."""
    parser = make_parser()
    args = parser.parse_args(argv)
    _check_environment(parser, args)
    dist = _init_distributed(parser, args) if args.distributed else None
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)
    if args.threads:
        gf.set_num_threads(args.threads)
    lr = args.lr if args.lr is not None else (0.05 if args.optimizer == "sgd" else 1e-3)
    out = args.out or os.path.join("checkpoints", f"{args.dataset}_mlp.npz")
    device = "cuda" if args.device == "cuda" else "cpu"

    x_train, y_train, x_test, y_test, mean, std = _load_data(parser, args)
    x_train, y_train, x_test, y_test = (gf.tensor(a, device=device)
                                        for a in (x_train, y_train, x_test, y_test))
    classes = int(max(y_train.max().item(), y_test.max().item())) + 1

    gf.manual_seed(args.seed)
    model = build_model(x_train.shape[1], args.hidden, classes, args.activation).to(device)
    step_model = nn.parallel.DistributedDataParallel(model, reduction="sum") if dist else model
    if args.optimizer == "sgd":
        optimizer = gf.optim.SGD(model.parameters(), lr=lr, momentum=args.momentum,
                                    weight_decay=args.weight_decay)
    else:
        optimizer = gf.optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    loader = gf.data.DataLoader(gf.data.TensorDataset(x_train, y_train), args.batch_size,
                                shuffle=True, seed=args.seed)

    def step(x, y):
        """One training step on a batch; returns the summed loss over it (this rank's part)."""
        if dist:  # this rank's share of the global batch; the loss sums over it
            lo, hi = _share(len(y), rank, world)
            loss = nn.functional.cross_entropy(step_model(x[lo:hi]), y[lo:hi],
                                               reduction="sum") / len(y)
        else:
            loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach() * len(y)

    if args.jit and not dist:  # (DDP's reductions run in hooks, which a replay would skip)
        step = gf.jit(step)

    history = {"loss": [], "train_accuracy": [], "test_accuracy": [], "seconds": []}
    # Once the training set is fitted, gradients drift to denormal floats, which the CPU
    # handles ~80x slower (a 1.4 s run took 20 s); flushing them to zero while training
    # changes no result that matters.
    gf.set_flush_denormal(True)
    try:
        for epoch in range(1, args.epochs + 1):
            start, seen = time.perf_counter(), 0
            total, shown = None, start  # total: the summed loss, kept on the loss's device
            bar = tqdm(loader, desc=f"epoch {epoch}/{args.epochs}", unit="batch", leave=False,
                       disable=rank != 0)
            for x, y in bar:
                step_total = step(x, y)
                total = step_total if total is None else total + step_total
                lo, hi = _share(len(y), rank, world) if dist else (0, len(y))
                seen += hi - lo
                # Read on the host (a GPU sync) only as often as tqdm redraws the bar.
                if not bar.disable and time.perf_counter() - shown >= bar.mininterval:
                    shown = time.perf_counter()
                    bar.set_postfix(loss=f"{total.item() / seen:.4f}", refresh=False)
            total = total.item()
            if dist:
                sums = gf.tensor([total, seen], dtype=gf.float64, device=device)
                dist.all_reduce(sums)
                total, seen = sums.tolist()
            history["seconds"].append(time.perf_counter() - start)
            history["loss"].append(total / seen)
            history["train_accuracy"].append(accuracy(model, x_train, y_train))
            history["test_accuracy"].append(accuracy(model, x_test, y_test))
            if rank == 0:
                tqdm.write(f"epoch {epoch:3d}/{args.epochs}  loss {history['loss'][-1]:.4f}  "
                           f"train acc {history['train_accuracy'][-1]:.4f}  "
                           f"test acc {history['test_accuracy'][-1]:.4f}")
    finally:
        gf.set_flush_denormal(False)

    config = {"in_features": x_train.shape[1], "hidden": args.hidden, "classes": classes,
              "activation": args.activation, "dataset": args.dataset}
    if rank == 0:
        gf.save({"model": model.state_dict(), "config": config, "mean": mean, "std": std,
                 "test_accuracy": history["test_accuracy"][-1]}, out)
        if args.plot:
            _plot(args.plot, history)
    if dist:
        dist.barrier()  # the checkpoint is written when any rank returns
    result = {"test_accuracy": history["test_accuracy"][-1],
              "train_accuracy": history["train_accuracy"][-1],
              "seconds_per_epoch": float(np.mean(history["seconds"])),
              "history": history, "checkpoint": out}
    if rank == 0:
        print(f"test accuracy {result['test_accuracy']:.4f}  "
              f"({result['seconds_per_epoch']:.3f} s per epoch, {args.epochs} epochs"
              + (f", {world} ranks" if dist else "") + ")")
        print(f"checkpoint: {out}" + (f"  curves: {args.plot}" if args.plot else ""))
    return result


def _share(n, rank, world):
    """[lo, hi) of rank ``rank``'s part of a batch of n, as np.array_split cuts it."""
    base, extra = divmod(n, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


if __name__ == "__main__":
    main()

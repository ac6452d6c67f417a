"""Runnable examples, each ``python -m gradflow.examples.NAME``:

logistic_regression  y = sigmoid(w.x + b) trained by hand-written gradient descent
xor                  two layers of sigmoid units learn XOR
fit_1d               one hidden layer fits sin on [-pi, pi] (universal approximation)
digits               a short MLP classifier on the embedded UCI digits

Each module's ``main()`` trains, prints its progress and returns its final metric.
"""

#!/usr/bin/python3
"""Train a small classifier on scikit-learn's digits and serve live progress as JSON.

A real PyTorch run (8x8 handwritten digits, 10 classes) that behaves like a Kubeflow
Trainer job which reports progress. Rank 0 serves `GET` on any path of the metrics port
with progressPercentage, estimatedRemainingSeconds, currentStep, totalSteps, currentEpoch,
totalEpochs, trainMetrics, evalMetrics and lastUpdatedTime. The endpoint starts only after
the (optionally simulated) model load, so connections are refused until then. At the end
the final values, without lastUpdatedTime and at most 4 KiB, go to the termination-message
file. The endpoint keeps serving for --linger seconds, so that a last scrape gets 100 %.

The data set ships inside python3-sklearn, so nothing is downloaded. Run it with Debian's
/usr/bin/python3, where python3-torch and python3-sklearn are installed.
"""

import argparse
import json
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

LOG = logging.getLogger("train_digits")
MAX_TERMINATION_MESSAGE_BYTES = 4096
ENV_PREFIX = "TRAIN_DIGITS_"


def env_default(name, fallback, kind=str):
    """Return the value of TRAIN_DIGITS_<NAME> converted with `kind`, or `fallback`."""
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None or raw.strip() == "":
        return fallback
    try:
        return kind(raw)
    except ValueError:
        sys.exit(f"invalid {ENV_PREFIX}{name}={raw!r}: expected {kind.__name__}")


def parse_args(argv=None):
    """Parse flags; each flag's default comes from its TRAIN_DIGITS_* variable."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=f"Each flag can also be set as {ENV_PREFIX}<FLAG>, e.g. {ENV_PREFIX}MAX_STEPS=30.",
    )
    add = parser.add_argument

    # What to train.
    add("--epochs", type=int, default=env_default("EPOCHS", 6, int),
        help="passes over the training split (default 6)")
    add("--max-steps", type=int, default=env_default("MAX_STEPS", 0, int),
        help="stop after this many optimizer steps; 0 means epochs x steps per epoch")
    add("--batch-size", type=int, default=env_default("BATCH_SIZE", 32, int),
        help="samples per optimizer step (default 32)")
    add("--learning-rate", type=float, default=env_default("LEARNING_RATE", 3e-3, float),
        help="peak learning rate of the warm-up + cosine schedule (default 0.003)")
    add("--model", choices=("mlp", "cnn"), default=env_default("MODEL", "mlp"),
        help="network: a 2-hidden-layer MLP or a small CNN (default mlp)")
    add("--eval-every", type=int, default=env_default("EVAL_EVERY", 0, int),
        help="steps between evaluations on the held-out split; 0 means twice per epoch")

    # Pacing, so that a run can be watched.
    add("--step-sleep", type=float, default=env_default("STEP_SLEEP", 0.3, float),
        help="seconds to sleep after each step so a run lasts long enough to watch "
             "(default 0.3, about 1.5 minutes in total)")
    add("--load-delay", type=float, default=env_default("LOAD_DELAY", 0.0, float),
        help="seconds of simulated model loading before the endpoint listens (default 0)")

    # Where progress goes.
    add("--metrics-host", default=env_default("METRICS_HOST", "127.0.0.1"),
        help="address the metrics endpoint binds (default 127.0.0.1)")
    add("--metrics-port", type=int, default=env_default("METRICS_PORT", 28080, int),
        help="port of the metrics endpoint (default 28080)")
    add("--termination-log", default=env_default("TERMINATION_LOG", "/dev/termination-log"),
        help="file for the final JSON, the container's terminationMessagePath "
             "(default /dev/termination-log)")
    add("--linger", type=float, default=env_default("LINGER", 5.0, float),
        help="seconds to keep serving after training ends (default 5)")
    add("--seed", type=int, default=env_default("SEED", 42, int),
        help="seed for data split, initialization and shuffling (default 42)")
    args = parser.parse_args(argv)

    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("max_steps", "eval_every", "step_sleep", "load_delay", "linger"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if args.model not in ("mlp", "cnn"):
        parser.error(f"invalid --model or {ENV_PREFIX}MODEL {args.model!r}: expected mlp or cnn")
    if not 0 <= args.metrics_port <= 65535:
        parser.error(f"invalid --metrics-port {args.metrics_port}: expected 0 to 65535")
    return args


def seed_everything(seed):
    """Seed Python, NumPy and PyTorch, and use one CPU thread for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def load_splits(seed):
    """Return (train_x, train_y, test_x, test_y) tensors, pixels scaled to [0, 1]."""
    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)
    train_x, test_x, train_y, test_y = train_test_split(
        features, digits.target, test_size=0.2, random_state=seed, stratify=digits.target)
    return (torch.from_numpy(train_x), torch.from_numpy(train_y).long(),
            torch.from_numpy(test_x), torch.from_numpy(test_y).long())


def build_model(kind):
    """Return an untrained network that maps 64 pixels to 10 class logits."""
    if kind == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))
    return nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def warmup_cosine(total_steps):
    """Return a LambdaLR factor: linear warm-up over 10 % of the steps, then cosine to 0."""
    warmup = max(1, total_steps // 10)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


class ProgressState:
    """The latest progress report, shared between the training loop and the HTTP threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._report = {}

    def update(self, **fields):
        with self._lock:
            self._report.update(fields)
            self._report["lastUpdatedTime"] = utc_now()

    def snapshot(self):
        with self._lock:
            return json.loads(json.dumps(self._report))


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def start_metrics_server(state, host, port):
    """Serve the state as JSON on every GET path from a background thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(state.snapshot()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass  # one line per scrape would drown the training log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    LOG.info("metrics endpoint listening on http://%s:%d/metrics", host, port)
    return server


def evaluate(model, test_x, test_y):
    """Return eval_loss and eval_accuracy on the held-out split."""
    model.eval()
    with torch.no_grad():
        logits = model(test_x)
        loss = nn.functional.cross_entropy(logits, test_y).item()
        accuracy = (logits.argmax(dim=1) == test_y).float().mean().item()
    model.train()
    return {"eval_loss": round(loss, 6), "eval_accuracy": round(accuracy, 6)}


def batches(count, batch_size, generator):
    """Yield index tensors of one shuffled epoch."""
    order = torch.randperm(count, generator=generator)
    for start in range(0, count, batch_size):
        yield order[start:start + batch_size]


def final_report(state):
    """Return the termination message: the last report without lastUpdatedTime, ≤ 4 KiB.

    The metric maps are dropped, evaluation first, if the message would not fit.
    """
    report = state.snapshot()
    report.pop("lastUpdatedTime", None)
    text = json.dumps(report, separators=(",", ":"))
    for optional in ("evalMetrics", "trainMetrics"):
        if len(text.encode()) <= MAX_TERMINATION_MESSAGE_BYTES:
            break
        report.pop(optional, None)
        text = json.dumps(report, separators=(",", ":"))
    return text


def write_termination_message(path, text):
    try:
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        LOG.info("final status written to %s", path)
    except OSError as error:
        LOG.warning("cannot write the termination message to %s: %s", path, error)


class StopRequested:
    """A flag set by SIGTERM, so the loop ends between steps and reports what it has."""

    def __init__(self):
        self.signal = None
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, number, _frame):
        self.signal = number

    def __bool__(self):
        return self.signal is not None


def optimizer_step(model, optimizer, schedule, inputs, targets):
    """Run one forward and backward pass and update the weights.

    Return the loss, the gradient norm before clipping and the learning rate used.
    """
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    grad_norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0).item()
    learning_rate = schedule.get_last_lr()[0]
    optimizer.step()
    schedule.step()
    return loss.item(), grad_norm, learning_rate


class StepTimer:
    """An exponential moving average of the wall time per step, sleep included."""

    def __init__(self):
        self.seconds_per_step = None

    def record(self, elapsed):
        if self.seconds_per_step is None:
            self.seconds_per_step = elapsed
        else:
            self.seconds_per_step = 0.9 * self.seconds_per_step + 0.1 * elapsed

    def remaining_seconds(self, steps_left):
        return math.ceil(steps_left * self.seconds_per_step)


def train(args, state, stop):
    """Run the training loop, updating `state` after every step. Return the steps done."""
    train_x, train_y, test_x, test_y = load_splits(args.seed)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    total_steps = args.max_steps or args.epochs * steps_per_epoch
    eval_every = args.eval_every or max(1, steps_per_epoch // 2)

    model = build_model(args.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps))
    generator = torch.Generator().manual_seed(args.seed)
    LOG.info("training %s: %d steps, %d per epoch, %d train and %d test samples", args.model,
             total_steps, steps_per_epoch, len(train_x), len(test_x))
    state.update(progressPercentage=0, estimatedRemainingSeconds=None, currentStep=0,
                 totalSteps=total_steps, currentEpoch=0.0,
                 totalEpochs=math.ceil(total_steps / steps_per_epoch),
                 trainMetrics=None, evalMetrics=None)

    step, timer, eval_metrics = 0, StepTimer(), None
    while step < total_steps and not stop:
        for indices in batches(len(train_x), args.batch_size, generator):
            started = time.monotonic()
            loss, grad_norm, learning_rate = optimizer_step(
                model, optimizer, schedule, train_x[indices], train_y[indices])
            step += 1
            if step % eval_every == 0 or step == total_steps:
                eval_metrics = evaluate(model, test_x, test_y)
                LOG.info("step %d/%d loss %.4f %s", step, total_steps, loss, eval_metrics)

            time.sleep(args.step_sleep)
            elapsed = time.monotonic() - started
            timer.record(elapsed)
            state.update(
                progressPercentage=step * 100 // total_steps,
                estimatedRemainingSeconds=timer.remaining_seconds(total_steps - step),
                currentStep=step,
                currentEpoch=round(step / steps_per_epoch, 2),
                trainMetrics={
                    "loss": round(loss, 6),
                    "learning_rate": learning_rate,
                    "grad_norm": round(grad_norm, 6),
                    "throughput_samples_sec": round(len(indices) / elapsed, 2),
                },
                evalMetrics=eval_metrics,
            )
            if step == total_steps or stop:
                break
    return step


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    stop = StopRequested()
    seed_everything(args.seed)
    rank = int(os.environ.get("RANK", "0"))

    if args.load_delay > 0:
        LOG.info("simulating a model load of %.1f s", args.load_delay)
        time.sleep(args.load_delay)
    state = ProgressState()
    server = start_metrics_server(state, args.metrics_host, args.metrics_port) if rank == 0 else None

    steps = train(args, state, stop)
    if rank == 0:
        write_termination_message(args.termination_log, final_report(state))
    if stop:
        LOG.info("stopped by signal %d after %d steps", stop.signal, steps)
        return 128 + stop.signal
    if server is not None:
        LOG.info("training finished after %d steps, serving for %.1f s more", steps, args.linger)
        time.sleep(args.linger)
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

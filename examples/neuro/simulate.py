"""Simulated extracellular recordings, written to files the way an acquisition system would.

Each session directory receives one `recording.npz` holding a voltage trace per channel
(float32, microvolts) sampled at `sampling_rate`, and a `ground_truth.json` listing the
simulated neurons, so the spike detection can be checked against the truth. Every channel
picks up zero to three neurons, each with its own firing rate, spike amplitude and
waveform, on top of Gaussian noise. One `numpy.random.Generator` seeded per session makes
the files identical on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

NOISE_UV = 12.0            # standard deviation of the background noise (µV)
WAVEFORM_MS = (-0.5, 1.5)  # extent of a spike waveform around its trough (ms)


def spike_waveform(sampling_rate: float, amplitude: float, width: float) -> np.ndarray:
    """A biphasic extracellular spike: a sharp trough and a slower positive rebound."""
    t = np.arange(*(np.array(WAVEFORM_MS) * sampling_rate / 1000)) / sampling_rate * 1000
    trough = -np.exp(-((t / (0.12 * width)) ** 2))
    rebound = 0.3 * np.exp(-(((t - 0.45 * width) / (0.35 * width)) ** 2))
    return (amplitude * (trough + rebound)).astype(np.float32)


def poisson_spikes(rng: np.random.Generator, rate: float, duration: float,
                   refractory: float = 0.002) -> np.ndarray:
    """Spike times (s) of a Poisson neuron with an absolute refractory period."""
    intervals = rng.exponential(1 / rate, size=int(rate * duration * 1.5) + 20) + refractory
    times = np.cumsum(intervals)
    return times[times < duration]


def simulate_recording(rng: np.random.Generator, *, duration: float, sampling_rate: float,
                       n_channels: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """(voltage of shape (samples, channels), the simulated neurons)."""
    n_samples = int(duration * sampling_rate)
    noise = rng.normal(0, NOISE_UV, size=(n_channels, n_samples)).astype(np.float32)
    offset = int(-WAVEFORM_MS[0] * sampling_rate / 1000)
    neurons = []
    for channel, trace in enumerate(noise):
        n_neurons = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.35, 0.35, 0.2]))
        # distinct amplitudes on one channel, as a spike sorter needs them to be
        amplitudes = np.sort(rng.choice([80, 150, 220, 290], size=n_neurons, replace=False)
                             + rng.uniform(-8, 8, size=n_neurons))
        for amplitude in amplitudes:
            rate = float(rng.uniform(2, 25))
            width = float(rng.uniform(0.8, 1.3))
            times = poisson_spikes(rng, rate, duration)
            waveform = spike_waveform(sampling_rate, float(amplitude), width)
            starts = (times * sampling_rate).astype(int) - offset
            starts = starts[(starts >= 0) & (starts + len(waveform) < n_samples)]
            # add every spike at once: one index per (spike, waveform sample)
            samples = (starts[:, None] + np.arange(len(waveform))).ravel()
            np.add.at(trace, samples, np.tile(waveform, len(starts)))
            neurons.append({"channel": channel, "amplitude_uv": round(float(amplitude), 1),
                            "rate_hz": round(rate, 2), "n_spikes": int(len(starts))})
    voltage = np.ascontiguousarray(noise.T)  # (samples, channels), as acquisition files are
    return voltage, neurons


def write_session(directory: Path, seed: int, *, duration: float = 5.0,
                  sampling_rate: float = 20_000.0, n_channels: int = 4) -> Path:
    """Write one session's recording files; returns the path of the recording."""
    rng = np.random.default_rng(seed)
    voltage, neurons = simulate_recording(rng, duration=duration, sampling_rate=sampling_rate,
                                          n_channels=n_channels)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recording.npz"
    np.savez(path, voltage=voltage, sampling_rate=sampling_rate)
    (directory / "ground_truth.json").write_text(json.dumps(neurons, indent=1))
    return path

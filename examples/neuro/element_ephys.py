"""A reusable pipeline module ("element") for extracellular electrophysiology.

A lab that shares this file shares tables, not just functions: every lab that uses it gets
the same Recording, SpikeDetection, UnitStats and Summary tables, filled by the same code.
The module declares its tables on a schema with no name yet, and knows nothing about the
lab's own tables. The application activates it, naming the schema and handing over a
*linking module* that supplies what the element needs from upstream:

    from examples.neuro import element_ephys, lab
    element_ephys.activate("ephys", linking_module=my_pipeline)

where `my_pipeline` provides

    Session                          the table each recording belongs to (`-> Session`)
    get_session_directory(key)       the folder that holds a session's recording files

Until `activate` runs, nothing touches a database; after it, the tables exist in the schema
`ephys` with foreign keys to the lab's `Session`, wherever that lives.

The computation, from raw voltage to summary:

    Session ─> Recording ─> SpikeDetection ─> UnitStats ─> Summary
                DetectionParams ─┘    └ Unit       └ Unit
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import datajoint_sa as dj

schema = dj.Schema()
_linking_module: ModuleType | None = None


def activate(schema_name: str, *, linking_module: ModuleType,
             connection: dj.Connection | None = None) -> dj.Schema:
    """Declare the element's tables in `schema_name`, linked to the application's tables."""
    global _linking_module, Session
    for name in ("Session", "get_session_directory"):
        if not hasattr(linking_module, name):
            raise dj.DataJointError(f"The linking module {linking_module.__name__} must "
                                    f"provide {name} (see the element_ephys docstring)")
    _linking_module = linking_module
    Session = linking_module.Session  # `-> Session` in the definitions below resolves to it
    schema.activate(schema_name, connection=connection)
    return schema


def session_directory(key: dict[str, Any]) -> Path:
    assert _linking_module is not None, "element_ephys is not activated"
    return Path(_linking_module.get_session_directory(key))


@schema
class Recording(dj.Imported):
    definition = """
    # raw voltage of a session's recording, read from the acquisition files
    -> Session
    ---
    sampling_rate : float64          # samples per second
    n_channels : int16
    duration : float64               # seconds
    voltage : longblob               # (samples, channels) float32 array in microvolts
    """

    def make(self, key: dict[str, Any]) -> None:
        data = np.load(session_directory(key) / "recording.npz")
        voltage = data["voltage"]
        rate = float(data["sampling_rate"])
        self.insert1({**key, "sampling_rate": rate, "n_channels": voltage.shape[1],
                      "duration": voltage.shape[0] / rate, "voltage": voltage})


@schema
class DetectionParams(dj.Lookup):
    definition = """
    # settings of the spike detector; every parameter set is applied to every recording
    paramset : int16
    ---
    threshold : float32              # detection threshold in units of the noise level
    refractory_ms : float32          # minimal interval between two detected spikes
    min_spikes : int32               # a cluster with fewer spikes is not reported as a unit
    """
    contents = [(1, 5.0, 1.0, 20), (2, 4.0, 1.0, 20)]


@schema
class SpikeDetection(dj.Computed):
    definition = """
    # threshold crossings per channel, clustered by amplitude into units
    -> Recording
    -> DetectionParams
    ---
    noise_levels : longblob          # per-channel noise (microvolts, median absolute deviation)
    n_units : int16
    """

    class Unit(dj.Part):
        definition = """
        # one putative neuron
        -> master
        unit : int16
        ---
        channel : int16
        spike_times : longblob       # seconds from the start of the recording
        waveform : longblob          # mean waveform around the trough (microvolts)
        """

    def make(self, key: dict[str, Any]) -> None:
        voltage, rate = (Recording & key).fetch1("voltage", "sampling_rate")
        threshold, refractory_ms, min_spikes = (DetectionParams & key).fetch1(
            "threshold", "refractory_ms", "min_spikes")
        # the noise level of each channel, robust to the spikes themselves
        noise = np.median(np.abs(voltage), axis=0) / 0.6745
        before, after = int(0.5e-3 * rate), int(1.5e-3 * rate)
        units = []
        for channel in range(voltage.shape[1]):
            trace = voltage[:, channel]
            peaks = detect_troughs(trace, -threshold * noise[channel],
                                   refractory=int(refractory_ms * 1e-3 * rate))
            peaks = peaks[(peaks >= before) & (peaks < len(trace) - after)]
            for members in split_by_amplitude(-trace[peaks], 4 * noise[channel]):
                if len(members) < min_spikes:
                    continue
                troughs = np.sort(peaks[members])
                snippets = trace[troughs[:, None] + np.arange(-before, after)]
                units.append({"unit": len(units), "channel": channel,
                              "spike_times": troughs / rate,
                              "waveform": snippets.mean(axis=0)})
        self.insert1({**key, "noise_levels": noise, "n_units": len(units)})
        self.Unit.insert({**key, **unit} for unit in units)


def detect_troughs(trace: np.ndarray, level: float, refractory: int) -> np.ndarray:
    """Sample indices of the troughs of downward crossings of `level`."""
    crossings = np.flatnonzero((trace[1:] < level) & (trace[:-1] >= level)) + 1
    kept: list[int] = []
    for start in crossings:
        if kept and start - kept[-1] < refractory:
            continue
        window = trace[start:start + refractory]
        kept.append(int(start + np.argmin(window)))
    return np.array(kept, dtype=int)


def split_by_amplitude(amplitudes: np.ndarray, separation: float) -> list[np.ndarray]:
    """Indices of amplitude clusters (a deliberately simple sorter; a real element would
    call Kilosort here). A cluster is split in two where the split leaves the least spread
    within the halves, as long as their mean amplitudes differ by `separation` or more."""
    order = np.argsort(amplitudes)
    values = amplitudes[order]
    if len(values) < 4:
        return [order] if len(values) else []
    cumulative = np.cumsum(values)
    n = np.arange(1, len(values))
    left_mean = cumulative[:-1] / n
    right_mean = (cumulative[-1] - cumulative[:-1]) / (len(values) - n)
    between = n * (len(values) - n) * (right_mean - left_mean) ** 2  # Otsu's criterion
    cut = int(np.argmax(between)) + 1
    if right_mean[cut - 1] - left_mean[cut - 1] < separation:
        return [order]
    return [order[part] for half in (np.arange(cut), np.arange(cut, len(values)))
            for part in split_by_amplitude(values[half], separation)
            for part in [half[part]]]


@schema
class UnitStats(dj.Computed):
    definition = """
    # quality and firing statistics of every unit of a spike detection
    -> SpikeDetection
    """

    class Unit(dj.Part):
        definition = """
        -> master
        -> SpikeDetection.Unit
        ---
        n_spikes : int32
        firing_rate : float64        # spikes per second
        amplitude : float64          # trough depth of the mean waveform (microvolts)
        snr : float64                # amplitude / noise level of the channel
        isi_violations : float64     # fraction of inter-spike intervals under 1.5 ms
        cv_isi = null : float64      # coefficient of variation of inter-spike intervals
        """

    def make(self, key: dict[str, Any]) -> None:
        duration = (Recording & key).fetch1("duration")
        noise = (SpikeDetection & key).fetch1("noise_levels")
        rows = []
        for unit in (SpikeDetection.Unit & key).fetch(as_dict=True):
            times = unit["spike_times"]
            intervals = np.diff(times)
            amplitude = float(-unit["waveform"].min())
            rows.append({
                **key, "unit": unit["unit"], "n_spikes": len(times),
                "firing_rate": len(times) / duration, "amplitude": amplitude,
                "snr": amplitude / float(noise[unit["channel"]]),
                "isi_violations": float(np.mean(intervals < 1.5e-3)) if len(intervals) else 0.0,
                "cv_isi": float(intervals.std() / intervals.mean()) if len(intervals) > 1
                else None})
        self.insert1(key)
        self.Unit.insert(rows)


@schema
class Summary(dj.Computed):
    definition = """
    # one line per recording and parameter set: how many good units, how they fire together
    -> UnitStats
    ---
    n_units : int16
    n_good_units : int16             # snr >= 5 and under 1% refractory violations
    mean_rate = null : float64       # mean firing rate of the good units
    correlations = null : longblob   # spike-count correlations of the good units (50 ms bins)
    """

    def make(self, key: dict[str, Any]) -> None:
        duration = (Recording & key).fetch1("duration")
        stats = UnitStats.Unit & key
        good = stats & "snr >= 5" & "isi_violations < 0.01"
        spike_times = (SpikeDetection.Unit & good).fetch("spike_times")
        rates = good.fetch("firing_rate")
        correlations = None
        if len(spike_times) > 1:
            bins = np.arange(0, duration + 0.05, 0.05)
            counts = np.array([np.histogram(t, bins)[0] for t in spike_times])
            correlations = np.corrcoef(counts)
        self.insert1({**key, "n_units": len(stats), "n_good_units": len(rates),
                      "mean_rate": float(rates.mean()) if len(rates) else None,
                      "correlations": correlations})


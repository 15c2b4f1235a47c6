"""Tiny synthetic acquisition and processing outputs, in the file formats the Elements'
readers parse (element_array_ephys.readers.spikeglx / .kilosort, element_interface's
prairie_view_loader and suite2p_loader): enough for their populate steps to run end to end
on a few channels, units, frames and cells. Every array is small and deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SERIAL = "18194819542"
SAMPLE_RATE = 30000
LF_RATE = 2500


def spikeglx(folder: Path, sites: Sequence[tuple[int, int, int]], *,
             lf_samples: int = 50) -> Path:
    """A SpikeGLX Neuropixels 1.0 (3B) recording of `sites` (shank, col, row) plus a sync
    channel: `run_g0_t0.imec0.ap.meta`, and the LF band (`.lf.meta` + `.lf.bin`, int16).
    Returns the .ap.meta path."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(sites)
    shank_map = "".join(f"({s}:{c}:{r}:1)" for s, c, r in sites)
    channels = "".join(f"(AP{i};{i}:{i})" for i in range(n))
    imro = f"~imroTbl=(0,{n})" + "".join(f"({i} 0 0 500 250)" for i in range(n))

    def meta(rate: int, size: int) -> str:
        return "\n".join([
            "imDatPrb_type=0", "typeImEnabled=1", f"imDatPrb_sn={SERIAL}", "imAiRangeMax=0.6",
            f"imSampRate={rate}", "fileCreateTime=2024-05-01T12:00:05", "fileTimeSecs=60.5",
            f"nSavedChans={n + 1}", "snsSaveChanSubset=all", f"fileSizeBytes={size}",
            f"~snsChanMap=({n},{n},1){channels}(SY0;{n}:{n})",
            f"~snsShankMap=(1,2,480){shank_map}", imro, ""])

    lf = (np.arange(lf_samples * (n + 1), dtype=np.int16) % 97 - 48).reshape(lf_samples, n + 1)
    (folder / "run_g0_t0.imec0.lf.bin").write_bytes(lf.tobytes())
    (folder / "run_g0_t0.imec0.lf.meta").write_text(meta(LF_RATE, lf.nbytes))
    ap_meta = folder / "run_g0_t0.imec0.ap.meta"
    ap_meta.write_text(meta(SAMPLE_RATE, 0))
    return ap_meta


#: units of the synthetic sorting: cluster id -> (quality label, peak channel, spike count);
#: cluster 2 has no spikes (the Element drops it)
UNITS = {0: ("good", 1, 6), 1: ("mua", 3, 4), 2: ("noise", 0, 0)}


def kilosort(folder: Path, n_channels: int = 4, n_samples: int = 20) -> None:
    """A Kilosort/phy output folder: the core .npy files, params.py, cluster_group.tsv,
    metrics.csv (quality control) and mean_waveforms.npy (unit x channel x sample)."""
    folder.mkdir(parents=True, exist_ok=True)
    n_templates = len(UNITS)
    clusters = np.concatenate([np.full(count, unit) for unit, (_, _, count) in UNITS.items()])
    n_spikes = len(clusters)
    t = np.linspace(0, np.pi, n_samples)
    templates = np.zeros((n_templates, n_samples, n_channels), dtype=np.float32)
    for unit, (_, peak, _) in UNITS.items():
        templates[unit, :, peak] = -np.sin(t)  # the peak channel of each template
    positions = np.array([[16.0 * (c % 2), 20.0 * (c // 2)] for c in range(n_channels)])
    spike_times = np.arange(n_spikes, dtype=np.uint64) * 3000 + 150
    arrays = {
        "amplitudes": np.linspace(10, 20, n_spikes),
        "channel_map": np.arange(n_channels, dtype=np.int32).reshape(-1, 1),
        "channel_positions": positions,
        "pc_features": np.abs(np.sin(np.arange(n_spikes * 3 * n_channels))).reshape(
            n_spikes, 3, n_channels).astype(np.float32) + 0.1,
        "pc_feature_ind": np.tile(np.arange(n_channels, dtype=np.uint32), (n_templates, 1)),
        "similar_templates": np.eye(n_templates, dtype=np.float32),
        "spike_templates": clusters.astype(np.uint32),
        "spike_times": spike_times,
        "template_features": np.ones((n_spikes, n_templates), dtype=np.float32),
        "template_feature_ind": np.tile(np.arange(n_templates, dtype=np.uint32),
                                        (n_templates, 1)),
        "templates": templates,
        "templates_ind": np.tile(np.arange(n_channels, dtype=np.float64), (n_templates, 1)),
        "whitening_mat": np.eye(n_channels),
        "whitening_mat_inv": np.eye(n_channels),
        "spike_clusters": clusters.astype(np.int32),
        "mean_waveforms": np.transpose(templates, (0, 2, 1)) * 50.0,
    }
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    (folder / "params.py").write_text(
        "dat_path = 'run_g0_t0.imec0.ap.bin'\nn_channels_dat = 5\ndtype = 'int16'\n"
        f"offset = 0\nsample_rate = {float(SAMPLE_RATE)}\nhp_filtered = False\n")
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n" + "".join(
        f"{unit}\t{label}\n" for unit, (label, _, _) in UNITS.items()))
    rows = ["cluster_id,firing_rate,snr,isi_viol,num_viol,amplitude_cutoff,presence_ratio,"
            "amplitude,duration,halfwidth,PT_ratio,l_ratio,contam_rate"]
    for unit, (_, _, count) in UNITS.items():
        rows.append(f"{unit},{count / 60.5:.4f},{3.5 + unit},0.0,0,0.1,0.9,{80.0 + unit},"
                    f"0.4,0.2,1.5,,{'inf' if unit == 1 else 0.01}")
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")


def prairieview(folder: Path, n_frames: int = 4, pixels: int = 16) -> Path:
    """A Prairie View single-plane scan: its metadata .xml and one (empty) .ome.tif per
    frame, as the loader finds the .xml beside the first image. Returns the first image."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = "".join(
        f'<Frame relativeTime="{0.5 * i}" index="{i + 1}">'
        f'<File channel="1" filename="scan_Cycle00001_Ch1_{i + 1:06d}.ome.tif"/></Frame>'
        for i in range(n_frames))
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<PVScan version="5.5" date="5/1/2024 12:10:00 PM">'
        "<PVStateShard>"
        '<PVStateValue key="framePeriod" value="0.5"/>'
        '<PVStateValue key="scanLinePeriod" value="0.0000632"/>'
        f'<PVStateValue key="pixelsPerLine" value="{pixels}"/>'
        '<PVStateValue key="micronsPerPixel"><IndexedValue index="XAxis" value="1.5"/>'
        '<IndexedValue index="YAxis" value="1.5"/></PVStateValue>'
        '<PVStateValue key="currentScanCenter"><IndexedValue index="XAxis" value="0.25"/>'
        '<IndexedValue index="YAxis" value="-0.5"/></PVStateValue>'
        '<PVStateValue key="positionCurrent"><SubindexedValues index="ZAxis">'
        '<SubindexedValue subindex="0" value="120.0"/></SubindexedValues></PVStateValue>'
        "</PVStateShard>"
        f'<Sequence type="TSeries Timed Element" cycle="1" time="12:10:00.0">{frames}</Sequence>'
        "</PVScan>")
    (folder / "scan.xml").write_text(xml)
    for i in range(n_frames):
        (folder / f"scan_Cycle00001_Ch1_{i + 1:06d}.ome.tif").write_bytes(b"")
    return folder / "scan_Cycle00001_Ch1_000001.ome.tif"


#: cells of the synthetic segmentation: (center y, center x, is a cell)
CELLS = [(4, 4, True), (10, 5, True), (8, 12, False)]


def suite2p(folder: Path, n_frames: int = 40, pixels: int = 16) -> None:
    """A Suite2p output folder with one plane (`plane0/`): ops.npy (rigid and non-rigid
    registration), stat.npy, iscell.npy, F.npy, Fneu.npy, spks.npy."""
    plane = folder / "plane0"
    plane.mkdir(parents=True, exist_ok=True)
    frames = np.arange(n_frames)
    image = np.add.outer(np.arange(pixels), np.arange(pixels)).astype(np.float32)
    blocks = 4
    ops = {
        "yoff": np.sin(frames / 5.0), "xoff": np.cos(frames / 5.0),
        "badframes": frames % 17 == 16, "nonrigid": True, "block_size": [8, 8],
        "nblocks": [2, 2],
        "yblock": [np.array([0, 8]), np.array([0, 8]), np.array([8, 16]), np.array([8, 16])],
        "xblock": [np.array([0, 8]), np.array([8, 16]), np.array([0, 8]), np.array([8, 16])],
        "yoff1": np.outer(np.sin(frames / 7.0), np.arange(1, blocks + 1)),
        "xoff1": np.outer(np.cos(frames / 7.0), np.arange(1, blocks + 1)),
        "refImg": image, "meanImg": image + 1, "Vcorr": image / image.max(),
        "max_proj": image + 2, "align_by_chan": 1, "functional_chan": 1, "fs": 2.0,
        "nframes": n_frames, "Ly": pixels, "Lx": pixels,
    }
    np.save(plane / "ops.npy", np.array(ops, dtype=object), allow_pickle=True)
    stats = []
    for y, x, _ in CELLS:
        ypix, xpix = np.meshgrid(np.arange(y - 1, y + 2), np.arange(x - 1, x + 2), indexing="ij")
        stats.append({"npix": 9, "med": [y, x], "ypix": ypix.ravel(), "xpix": xpix.ravel(),
                      "lam": np.linspace(1.0, 0.2, 9), "iplane": 0})
    np.save(plane / "stat.npy", np.array(stats, dtype=object), allow_pickle=True)
    np.save(plane / "iscell.npy", np.array([[float(c), 0.9 if c else 0.2] for *_, c in CELLS]))
    traces = np.array([100 + 10 * np.sin(frames / (3.0 + i)) for i in range(len(CELLS))],
                      dtype=np.float32)
    np.save(plane / "F.npy", traces)
    np.save(plane / "Fneu.npy", traces * 0.7)
    np.save(plane / "spks.npy", np.clip(np.diff(traces, prepend=traces[:, :1]), 0, None))

"""What the benchmark scripts share: the synthetic models' legacy .h5 header and the results files."""
import json
import os

import numpy as np

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def legacy_weights_group(f, config, layer_names):
    """Writes a Keras 3 legacy .h5's root attributes into the open h5py file `f`; returns `model_weights`."""
    f.attrs["model_config"] = json.dumps(config)
    f.attrs["keras_version"] = "3.15.1"
    f.attrs["backend"] = "tensorflow"
    g = f.create_group("model_weights")
    g.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
    return g


def publish(name, text, note):
    """Prints a results table and its note, and writes them to tools/bench/results/NAME.md."""
    print(text)
    print(note)
    os.makedirs(os.path.join(TOP, "tools/bench/results"), exist_ok=True)
    with open(os.path.join(TOP, f"tools/bench/results/{name}.md"), "w") as f:
        f.write(text + "\n\n" + note + "\n")


def back_memory(nbytes):
    """Touches `nbytes` of fresh memory and frees it, right before a timed run. This machine is a VM
    whose balloon device reports free pages to the host (virtio_balloon, feature bit 5: free page
    reporting): memory freed for a few seconds goes back to the host, and the next process to use it
    pays for the host to supply it again (3 GiB took 7-9 s to touch, dd of 1 GiB into the page cache
    0.4 s after a busy spell and 2.4 s after 10 s idle). Without this, whichever tool runs first after a
    pause (a `sync`, a deleted output) is charged with the host's work: the cause of the issue's 2.25x."""
    block = np.ones(nbytes, dtype=np.uint8)
    del block

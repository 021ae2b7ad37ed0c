"""Stream a WAV file through the live API in 20 ms chunks, as a real-time source would.

    python docs/examples/stream_wav.py tests/data/speech_44k1_stereo_s24.wav \
        [--model models/audio_encoder.onnx]

Prints when each frame became final (after how much audio) and checks at the
end that the streamed frames equal the batch result byte for byte.
"""

from __future__ import annotations

import argparse

import numpy as np
import soundfile as sf

from synctalk_audio.pipeline import Pipeline
from synctalk_audio.streaming import FeatureStreamer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("wav")
    parser.add_argument("--model", default="models/audio_encoder.onnx")
    args = parser.parse_args()

    streamer = FeatureStreamer(args.model)  # one ONNX session, shared by every stream
    frames = []
    with sf.SoundFile(args.wav) as f:
        stream = streamer.open(sample_rate=f.samplerate, channels=f.channels)
        fed = 0
        for block in f.blocks(blocksize=f.samplerate // 50, dtype="float32", always_2d=True):
            fed += block.shape[0]
            for frame in stream.feed(block):  # 20 ms in, zero or more final frames out
                print(f"frame {frame.index:4d} final after {fed / f.samplerate:6.3f} s of audio")
                frames.append(frame.features)
        for frame in stream.close():  # end of input: the last frames
            print(f"frame {frame.index:4d} final at end of input")
            frames.append(frame.features)

    with Pipeline(args.model) as pipe:
        batch = pipe.process(args.wav).all_frames()
    same = np.stack(frames).tobytes() == batch.tobytes()
    print(f"{len(frames)} frames; identical to the batch result: {same}")
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()

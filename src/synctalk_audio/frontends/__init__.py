"""Front ends: audio loading, the mel spectrogram, WAV streams, encoder windows."""

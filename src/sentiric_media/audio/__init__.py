"""Audio that is not RTP: URIs, prompt decoding and cache, resamplers, PCM helpers."""

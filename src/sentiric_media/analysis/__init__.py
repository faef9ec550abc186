"""Analysis of the caller's audio.

In-band DTMF, voice activity (and the VAD worker), the echo path for barge-in,
keyword spotting and the emotion estimate (and their worker process).
"""

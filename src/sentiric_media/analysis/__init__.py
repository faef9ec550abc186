"""Live analysis of the caller's audio (VAD, barge-in, DTMF, keywords, arousal): later issues."""

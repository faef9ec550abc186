"""RTP media: packets, codecs, the media clock, sessions, jitter buffer, playout."""

"""Sentiric media service: the real-time media engine of a voice-AI telephony platform."""

"""Load generator for the media service (not a test): `python -m bench.loadgen --help`.

Modules: `plan` (the shared timeline of a run), `service` (the service under test
as a subprocess, /proc and /metrics readers), `rtp_load` (the RTP process),
`control` (gRPC control and RecordAudio readers), `report` (figures, verdict,
JSON lines, markdown), `loadgen` (command line, one run, the search).
"""

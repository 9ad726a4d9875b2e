"""What the service sees in a drone's video: pure image analysis over decoded frames.

- ``geometry``: pixel <-> ground for the nadir camera (ground sample distance, heading).
- ``ice``: an icy road's sheen (HSV thresholds, morphology, connected components).
- ``traffic``: vehicles, density, speed and stopped fraction from a hovering drone's frames.
- ``frames``: a nest's H.264 stream from the video hub decoded (PyAV, in a worker thread) into
  BGR frames at a bounded rate, with the capture time read from the picture's time code.

OpenCV, numpy and PyAV are allowed here (an edge package); everything but ``frames`` is pure.
"""

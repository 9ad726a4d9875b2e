"""The simulated PX4 autopilot of a nest (``px4.Px4Autopilot``) and its parts.

modes       PX4 flight modes and their MAVLink encoding (custom_mode, base_mode)
params      the parameters clients touch, with PX4's bytewise integer encoding
kinematics  the multicopter's motion: speed and acceleration limits, wind
battery     charge, drain with flight, voltage
telemetry   the messages PX4 streams, built from the vehicle state
navigator   what each mode flies: takeoff, hold, reposition, mission, RTL, land
mission     the mission protocol server (MISSION_* messages); fence: geofence checks
"""

"""Physical constants of the small GCM, shared by the NumPy reference (`reference.gcm`) and its JAX twin
(`implementations.gcm`) so that both compute with the same numbers. Plain Python floats."""

from __future__ import annotations

# the planet
EARTH_RADIUS = 6.371e6  # m
OMEGA = 8.7267e-5  # s^-1, the rotation rate of the original model's planet

# radiation
STEFAN_BOLTZMANN = 5.670374419e-8  # W m^-2 K^-4
SW_ATM_MAX = 0.95  # cap on the shortwave fraction absorbed by the atmosphere

# saturation humidity (Tetens)
TETENS_A = 610.94  # Pa
TETENS_B = 17.625
TETENS_C = 243.04  # degC
T_CELSIUS_MIN, T_CELSIUS_MAX = -80.0, 60.0  # clip of T - 273.15 in the Tetens formula
EPSILON_WATER = 0.622  # ratio of the molar masses of water and dry air
Q_SAT_MAX = 0.5

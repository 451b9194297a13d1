"""The catalogue of realistic porting bugs of the gcm port, for `python -m conformance mutate`: each entry is a
source patch of `implementations/gcm` that a porter could plausibly make, and the suite, under the `ci`
profile, must fail on it.

The first group are the classic defects of this port (the original model's seam, SciPy's 'wrap' mode name,
one-sided pole rows, a substep that forgets to divide dt, ...); `test_negative_controls.py` also applies
them in process and checks that the explicit examples of the case named in `CONTROLS` catch each one. The
others are the slips people make when porting: boundary and periodicity rules, mode names, constants of
another textbook, clamps and floors, spline boundary conditions, a default used instead of the argument
passed, an optional physics switch, float32 where the port should follow the input's dtype, a dot whose
precision is left to the global setting, and model-step errors below the resolution of a state comparison.
"""

from __future__ import annotations

from conformance.mutate import Mutant

DYN = "implementations/gcm/dynamics.py"
PHYS = "implementations/gcm/physics.py"
MODEL = "implementations/gcm/model.py"
NDI = "implementations/gcm/ndimage.py"

_LAPLACIAN_CALL = """    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    s = _pack(dtype, float(dlat), float(dlon), float(a))
    return _run(_laplacian_jit, fields, column(coslat, dtype), s)"""
_DEPARTURE_I = """    id_ = mod_like_numpy(
        i - divide_like_numpy(u * dt, a * jnp.maximum(c, DEPARTURE_COSLAT_FLOOR) * dlon), n_lon
    )"""
_MODE_ALIAS = 'mode = "reflect" if args.mode == "grid-mirror" else args.mode'
_Q_SAT_CLIP = "t_c = jnp.clip(t - 273.15, T_CELSIUS_MIN, T_CELSIUS_MAX)"
_ROTATION = """    u2 = (rounded(u1 * rows.cos_f) + rounded(v1 * rows.sin_f)) * p.damp
    v2 = (rounded(-u1 * rows.sin_f) + rounded(v1 * rows.cos_f)) * p.damp"""

MUTANTS: list[Mutant] = [
    # -- the classic defects (also applied in process by test_negative_controls.py) ---------------------------
    Mutant(
        "gcm.laplacian.seam-dlon",
        DYN,
        _LAPLACIAN_CALL,
        _LAPLACIAN_CALL.replace("_, dtype", "shape, dtype").replace(
            "float(dlon), float(a))", "2.0 * np.pi / (shape[1] - 1), float(a))"
        ),
        "periodicity",
        "dlon recomputed with the original model's convention (longitude repeats 360 degrees): 2 pi / (n - 1)",
    ),
    Mutant(
        "gcm.laplacian.pole-rows-second-order",
        DYN,
        """    first = divide_like_numpy(F[1:2] - F[0:1], dlat)
    interior = divide_like_numpy(F[2:] - F[:-2], 2.0 * dlat)
    last = divide_like_numpy(F[-1:] - F[-2:-1], dlat)""",
        """    first = divide_like_numpy(4.0 * F[1:2] - 3.0 * F[0:1] - F[2:3], 2.0 * dlat)
    interior = divide_like_numpy(F[2:] - F[:-2], 2.0 * dlat)
    last = divide_like_numpy(3.0 * F[-1:] - 4.0 * F[-2:-1] + F[-3:-2], 2.0 * dlat)""",
        "boundary",
        "np.gradient(edge_order=2): second-order one-sided pole rows where the reference is first order",
    ),
    Mutant(
        "gcm.laplacian.metric-floor-ignored",
        DYN,
        _LAPLACIAN_CALL,
        _LAPLACIAN_CALL.replace(
            "column(coslat, dtype)",
            "column(np.maximum(np.cos(np.linspace(-np.pi / 2, np.pi / 2, np.shape(F)[0])), 1e-3), dtype)",
        ),
        "clamp",
        "the caller's clamped metric cosine ignored: true cos(lat), floored only at 1e-3",
    ),
    Mutant(
        "gcm.hyperdiffuse.dt-not-split",
        DYN,
        "_pack(dtype, dt / n, float(dlat), float(dlon), float(a))",
        "_pack(dtype, dt, float(dlat), float(dlon), float(a))",
        "off-by-one",
        "every substep advances by the full dt instead of dt / n_substeps",
    ),
    Mutant(
        "gcm.advect.scipy-wrap-period",
        DYN,
        _DEPARTURE_I,
        _DEPARTURE_I.replace("* dlon), n_lon\n", "* dlon), n_lon - 1\n"),
        "periodicity",
        "departure longitudes reduced with period n - 1 (SciPy's 'wrap') where the grid's period is n",
    ),
    Mutant(
        "gcm.advect.pole-to-pole-wrap",
        DYN,
        "jd = jnp.clip(j - divide_like_numpy(v * dt, a_dlat), 0, n_lat - 1)",
        "jd = mod_like_numpy(j - divide_like_numpy(v * dt, a_dlat), n_lat)",
        "boundary",
        "no latitude clamp: a departure point past a pole wraps to the other pole",
    ),
    Mutant(
        "gcm.shapiro.wrap-in-latitude",
        DYN,
        "return jnp.concatenate([F[:1], F, F[-1:]], axis=0)",
        "return jnp.concatenate([F[-1:], F, F[:1]], axis=0)",
        "mode-name",
        "the filter's latitude edges periodic ('wrap') instead of 'nearest'",
    ),
    Mutant(
        "gcm.divergence.sign",
        DYN,
        "_d_lambda(u, dlon) + _d_phi_interior(rounded(v * c), dlat)",
        "_d_lambda(u, dlon) - _d_phi_interior(rounded(v * c), dlat)",
        "sign",
        "sign of the meridional term of the divergence",
    ),
    Mutant(
        "gcm.q_sat.triple-point",
        PHYS,
        _Q_SAT_CLIP,
        _Q_SAT_CLIP.replace("273.15", "273.16"),
        "constant",
        "the triple point 273.16 K where the Celsius offset 273.15 K is meant",
    ),
    Mutant(
        "gcm.map_coordinates.jax-wrap-name",
        NDI,
        _MODE_ALIAS,
        'mode = {"grid-mirror": "reflect", "wrap": "grid-wrap"}.get(args.mode, args.mode)',
        "mode-name",
        "SciPy's 'wrap' computed as JAX's 'wrap' (SciPy's 'grid-wrap', period n instead of n - 1)",
    ),
    # -- boundaries, periodicity, mode names and splines ------------------------------------------------------
    Mutant(
        "gcm.stencil.seam-ring",
        DYN,
        "return jnp.concatenate([F[:, -1:], F, F[:, :1]], axis=1)",
        "return jnp.concatenate([F[:, -2:-1], F, F[:, 1:2]], axis=1)",
        "periodicity",
        "zonal ghost columns of a grid that repeats its first meridian (period n - 1) on a grid that does not",
    ),
    Mutant(
        "gcm.map_coordinates.constant-as-grid-constant",
        NDI,
        _MODE_ALIAS,
        'mode = {"grid-mirror": "reflect", "constant": "grid-constant"}.get(args.mode, args.mode)',
        "mode-name",
        "SciPy's 'constant' computed as JAX's 'constant' (SciPy's 'grid-constant': blends towards cval)",
    ),
    Mutant(
        "gcm.map_coordinates.wrap-taps-periodic",
        NDI,
        'rule = {"constant": "mirror", "wrap": "mirror"}.get(mode, mode)',
        'rule = {"constant": "mirror", "wrap": "grid-wrap"}.get(mode, mode)',
        "boundary",
        "'wrap' taps outside the input folded periodically, where SciPy folds them by 'mirror'",
    ),
    Mutant(
        "gcm.map_coordinates.wrap-prefilter-periodic",
        NDI,
        '    "wrap": "mirror",\n',
        '    "wrap": "periodic",\n',
        "spline-boundary",
        "the 'wrap' B-spline prefilter with a periodic boundary, where SciPy's assumes a mirror extension",
    ),
    Mutant(
        "gcm.map_coordinates.nearest-prefilter-mirror",
        NDI,
        '"nearest": "reflect",  # on the edge-padded array',
        '"nearest": "mirror",  # on the edge-padded array',
        "spline-boundary",
        "the 'nearest' prefilter (on the 12-sample padded array) with a whole-sample instead of a half-sample "
        "boundary",
    ),
    Mutant(
        "gcm.map_coordinates.reflect-defect-not-reproduced",
        NDI,
        """    if extension == "reflect" and n < _REFLECT_CORRECTION_BELOW:
        u, v = _scipy_reflect_correction(n)
        p = p + np.outer(u, v)
    return p""",
        "    return p",
        "spline-boundary",
        "the exact half-sample prefilter on short axes, not SciPy 1.17's (whose start value has a defect)",
    ),
    Mutant(
        "gcm.map_coordinates.long-axis-mirror-extension",
        NDI,
        "inner = jax.lax.slice_in_dim(x, 1, n - 1, axis=axis)",
        "inner = jax.lax.slice_in_dim(x, 0, n, axis=axis)",
        "spline-boundary",
        "the FFT prefilter of long axes extends 'mirror' data with period 2n (half-sample) instead of 2n - 2",
    ),
    # -- dtypes and precision ----------------------------------------------------------------------------------
    Mutant(
        "gcm.map_coordinates.coordinates-float32",
        NDI,
        "coeffs, coords = input, coordinates.astype(input.dtype)",
        "coeffs, coords = input, coordinates.astype(jnp.float32)",
        "accumulation-dtype",
        "coordinates cast to float32 whatever the input's dtype (JAX's default float)",
    ),
    Mutant(
        "gcm.step.scalars-float32",
        MODEL,
        "packed = np.array(_scalars(params, grid), dtype=dtype_str)",
        "packed = np.array(_scalars(params, grid), dtype=np.float32)",
        "accumulation-dtype",
        "the step's scalars packed as float32 whatever the state's dtype",
    ),
    Mutant(
        "gcm.map_coordinates.prefilter-default-precision",
        NDI,
        "y = jnp.tensordot(x, p, axes=([axis], [1]), precision=jax.lax.Precision.HIGHEST)",
        "y = jnp.tensordot(x, p, axes=([axis], [1]))",
        "precision",
        "the prefilter's matrix product at the default precision (TF32 on a GPU, bf16 passes on a TPU) unless "
        "the caller pins jax_default_matmul_precision",
    ),
    # -- substeps, clamps, constants ---------------------------------------------------------------------------
    Mutant(
        "gcm.hyperdiffuse.loop-one-substep-short",
        DYN,
        "return lax.fori_loop(0, n_substeps, lambda _, F: substep(F), F)",
        "return lax.fori_loop(1, n_substeps, lambda _, F: substep(F), F)",
        "off-by-one",
        "the loop path (more than 4 substeps) runs one substep too few",
    ),
    Mutant(
        "gcm.advect.departure-floor",
        DYN,
        "DEPARTURE_COSLAT_FLOOR = 1e-6",
        "DEPARTURE_COSLAT_FLOOR = 1e-3",
        "clamp",
        "the zonal departure distance floored at cos(lat) = 1e-3 (the hyperdiffusion's floor) instead of 1e-6",
    ),
    Mutant(
        "gcm.q_sat.no-celsius-clip",
        PHYS,
        _Q_SAT_CLIP,
        "t_c = t - 273.15",
        "clamp",
        "Tetens without the clip of T - 273.15 to [-80, 60] C",
    ),
    Mutant(
        "gcm.q_sat.magnus-constants",
        PHYS,
        "e_s = TETENS_A * jnp.exp(TETENS_B * t_c / (t_c + TETENS_C))",
        "e_s = TETENS_A * jnp.exp(17.27 * t_c / (t_c + 237.3))",
        "constant",
        "the classic Tetens/Magnus constants (17.27, 237.3) instead of the model's (17.625, 243.04)",
    ),
    Mutant(
        "gcm.longwave.stefan-boltzmann-rounded",
        PHYS,
        "up = rounded(STEFAN_BOLTZMANN * _fourth_power(t_surf))",
        "up = rounded(5.67e-8 * _fourth_power(t_surf))",
        "constant",
        "the Stefan-Boltzmann constant rounded to 5.67e-8 in the v1 surface emission",
    ),
    # -- arguments, defaults and switches ------------------------------------------------------------------------
    Mutant(
        "gcm.longwave.eps0-default",
        PHYS,
        's = _pack(dtype, scalar("eps0", eps0), scalar("k_c", k_c), _lock_value(olr_lock))',
        's = _pack(dtype, 0.7, scalar("k_c", k_c), _lock_value(olr_lock))',
        "default-argument",
        "longwave_v1 uses the default clear-sky emissivity 0.7 instead of the eps0 passed",
    ),
    Mutant(
        "gcm.longwave.olr-lock-complement",
        PHYS,
        'return 0.0 if olr_lock is None else (1.0 - scalar("olr_lock", olr_lock)) * STEFAN_BOLTZMANN',
        'return 0.0 if olr_lock is None else scalar("olr_lock", olr_lock) * STEFAN_BOLTZMANN',
        "formula",
        "the OLR lock (the original's QD_GH_LOCK switch) sets OLR = g sigma Ts^4 instead of (1 - g) sigma Ts^4",
    ),
    Mutant(
        "gcm.evaporation.density-default",
        PHYS,
        "_pack(dtype, rho * c_e, p)",
        "_pack(dtype, 1.2 * c_e, p)",
        "default-argument",
        "evaporation uses the default air density 1.2 instead of the rho passed",
    ),
    Mutant(
        "gcm.condensation.timescale-default",
        PHYS,
        "_pack(dtype, dt, tau, column_mass, p)",
        "_pack(dtype, dt, 3600.0, column_mass, p)",
        "default-argument",
        "condensation uses the default time scale 3600 s instead of the tau passed",
    ),
    # -- the model step -------------------------------------------------------------------------------------------
    Mutant(
        "gcm.step.coriolis-sign",
        MODEL,
        _ROTATION,
        """    u2 = (rounded(u1 * rows.cos_f) - rounded(v1 * rows.sin_f)) * p.damp
    v2 = (rounded(u1 * rows.sin_f) + rounded(v1 * rows.cos_f)) * p.damp""",
        "sign",
        "the Coriolis rotation turned the wrong way",
    ),
    Mutant(
        "gcm.step.substeps-full-dt",
        MODEL,
        "dt_sub=dt / params.n_substeps,",
        "dt_sub=dt,",
        "off-by-one",
        "the step's hyperdiffusion substeps each advance by the full dt",
    ),
    Mutant(
        "gcm.step.blend-on-cloud",
        MODEL,
        "_BLENDED = np.array([False, False, True, True, False])",
        "_BLENDED = np.array([False, False, True, False, True])",
        "layout",
        "the advection blend applied to the wrong slot of the stacked state (cloud instead of q)",
    ),
    Mutant(
        "gcm.step.tracer-diffusion-factor",
        MODEL,
        "K4_FACTOR_TRACER = 0.5",
        "K4_FACTOR_TRACER = 1.0",
        "constant",
        "t_atm and q diffused with the winds' factor 1 instead of 0.5",
    ),
    Mutant(
        "gcm.step.cloud-diffused-as-tracer",
        MODEL,
        "k4s = (rows.k4_wind, rows.k4_wind, rows.k4_tracer, rows.k4_tracer, rows.k4_cloud)",
        "k4s = (rows.k4_wind, rows.k4_wind, rows.k4_tracer, rows.k4_tracer, rows.k4_tracer)",
        "layout",
        "the cloud field diffused with the tracers' coefficient (factor 0.5 instead of 0.25)",
    ),
    Mutant(
        "gcm.step.filter-u-only",
        MODEL,
        "x = lax.fori_loop(0, 2, smooth, x)",
        "x = lax.fori_loop(0, 1, smooth, x)",
        "off-by-one",
        "the Shapiro filter loop stops after u and never filters v",
    ),
    Mutant(
        "gcm.step.sensible-uses-c_e",
        MODEL,
        "sensible=params.rho_air * params.cp_air * params.c_h,",
        "sensible=params.rho_air * params.cp_air * params.c_e,",
        "constant",
        "the sensible heat flux uses the evaporation coefficient c_e (equal to c_h by default)",
    ),
    Mutant(
        "gcm.step.latent-heat-default",
        MODEL,
        "latent = rounded(p.latent_heat * evap)",
        "latent = rounded(2.5e6 * evap)",
        "default-argument",
        "the surface latent heat flux uses the default latent heat 2.5e6 J/kg instead of the parameter",
    ),
    Mutant(
        "gcm.step.solar-absorption-default",
        MODEL,
        "sw = _shortwave(frc.insolation, frc.albedo, cloud3, p.sw_a0, p.sw_kc)",
        "sw = _shortwave(frc.insolation, frc.albedo, cloud3, 0.06, p.sw_kc)",
        "default-argument",
        "the step's shortwave uses the default clear-sky absorption 0.06 instead of sw_a0",
    ),
    Mutant(
        "gcm.step.cloud-rh-before-moistening",
        MODEL,
        "rh = q6 / _q_sat(t_atm7, p.pressure)",
        "rh = q3 / _q_sat(t_atm7, p.pressure)",
        "state",
        "the cloud diagnostic reads the humidity before evaporation and condensation (q3 instead of q6)",
    ),
]

#!/usr/bin/env python3
"""Baseline for `cellops bench twin`: the cellops-twin T-cell model (bioprocess.md §2.1,
crates/cellops-twin/src/tcell.rs) integrated with scipy.integrate.solve_ivp (RK45) at the
same tolerances and output points as the Rust model.

Usage: twin_baseline.py INPUT.json OUTPUT.json
INPUT holds the runs (parameters, initial state, schedule) written by the Rust bench;
OUTPUT receives the trajectories and the wall time of the integration loop alone
(imports and JSON are excluded, as on the Rust side).
"""
import json
import math
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

XV, XD, GLC, LAC, AMM, T_ACT, BAC = range(7)
GLUCOSE_STEP_WIDTH_MM = 0.05
BACTERIA_MU_PER_H = 0.7
BACTERIA_MAX_PER_ML = 1e9
BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H = 3e-3
BACTERIA_ACID_PER_GLUCOSE = 2.0


def rhs(p, c, y):
    t_lag = p["t_lag_restim_h"] if c["restimulated"] else p["t_lag_h"]
    lag = 1.0 / (1.0 + math.exp(-(y[T_ACT] - t_lag) / p["tau_lag_h"]))
    stim = math.exp(-p["k_s_per_h"] * y[T_ACT])
    g = max(y[GLC], 0.0)
    f_g = g / (p["k_g_mm"] + g)
    f_l = p["k_il_mm"] / (p["k_il_mm"] + max(y[LAC], 0.0))
    f_a = p["k_ia_mm"] / (p["k_ia_mm"] + max(y[AMM], 0.0))
    f_x = max(1.0 - y[XV] / p["x_max_cells_per_ml"], 0.0)
    mu = (p["mu_max_per_h"] * p["mu_multiplier"] * c["growth_factor"] * lag
          * (p["s_min"] + (1.0 - p["s_min"]) * stim) * f_g * f_l * f_a * f_x)
    starving = 1.0 / (1.0 + math.exp((y[GLC] - p["g_crit_mm"]) / GLUCOSE_STEP_WIDTH_MM))
    kd = (p["kd0_per_h"] + p["kd_g_per_h"] * starving
          + p["kd_l_per_h"] * max(y[LAC] - p["l_crit_mm"], 0.0) / p["l_crit_mm"]
          + c["death_extra_per_h"])
    d = c["perfusion_per_day"] / 24.0
    d_bleed = c["bleed_per_day"] / 24.0
    xv = y[XV]
    uptake_limit = g / (p["k_uptake_mm"] + g)
    uptake = p["q_g_pmol_per_cell_day"] * xv * 1e-6 / 24.0 * uptake_limit
    bac = max(y[BAC], 0.0)
    mu_bac = (BACTERIA_MU_PER_H * c["growth_factor"] * max(uptake_limit, 0.0)
              * max(1.0 - bac / BACTERIA_MAX_PER_ML, 0.0))
    uptake_bac = BACTERIA_Q_GLUCOSE_PMOL_PER_CELL_H * bac * 1e-6 * uptake_limit
    return [
        (mu - kd) * xv - d_bleed * xv,
        kd * xv - p["k_lys_per_h"] * y[XD] - d_bleed * y[XD],
        -uptake - uptake_bac + d * (c["glucose_in_mm"] - y[GLC]),
        p["y_lg_mol_per_mol"] * uptake + BACTERIA_ACID_PER_GLUCOSE * uptake_bac - d * y[LAC],
        p["q_a_pmol_per_cell_day"] * xv * 1e-6 / 24.0 - p["k_adeg_per_h"] * y[AMM] - d * y[AMM],
        1.0,
        mu_bac * bac - (d + d_bleed) * bac,
    ]


def apply(action, p, state, c):
    kind = action["kind"]
    if kind == "feed":
        v0 = state["volume_ml"]
        v1 = v0 + action["volume_ml"]
        y = state["y"]
        for i in (XV, XD, LAC, AMM, BAC):
            y[i] *= v0 / v1
        y[GLC] = (y[GLC] * v0 + action["glucose_mm"] * action["volume_ml"]) / v1
        state["volume_ml"] = v1
    elif kind == "exchange":
        f = action["fraction"]
        y = state["y"]
        y[GLC] = y[GLC] * (1.0 - f) + action["glucose_mm"] * f
        for i in (LAC, AMM, BAC):
            y[i] *= 1.0 - f
    elif kind == "set_perfusion":
        c["perfusion_per_day"] = action["per_day"]
    elif kind == "transduce":
        pass  # CAR+ fraction only; no effect on the ODE state
    elif kind == "restimulate":
        y = state["y"]
        killed = y[XV] * p["r_aicd"]
        y[XV] -= killed
        y[XD] += killed
        y[T_ACT] = 0.0
        c["restimulated"] = True
    else:
        raise ValueError(f"unknown action {kind!r}")


def advance(p, c, y, t0, t1, rtol, atol):
    """y(t1) from y(t0) under constant controls (RK45, the Rust integrator's method)."""
    if t1 <= t0:
        return y
    sol = solve_ivp(lambda _t, yy: rhs(p, c, yy), (t0, t1), y,
                    method="RK45", rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(sol.message)
    return sol.y[:, -1].tolist()


def simulate(run, outputs, rtol, atol):
    """Mirrors tcell::simulate: for each output time, apply the actions scheduled strictly
    before it (integrating up to each), then integrate to the output and record it."""
    p = run["params"]
    c = dict(run["controls"])
    state = {"y": list(run["y0"]), "volume_ml": run["volume_ml"]}
    schedule = run["schedule"]
    out = []
    t = 0.0
    k = 0
    for t_out in outputs:
        while k < len(schedule) and schedule[k]["at_h"] < t_out:
            at = schedule[k]["at_h"]
            state["y"] = advance(p, c, state["y"], t, at, rtol, atol)
            t = max(t, at)
            apply(schedule[k]["action"], p, state, c)
            k += 1
        state["y"] = advance(p, c, state["y"], t, t_out, rtol, atol)
        t = max(t, t_out)
        out.append(list(state["y"]) + [state["volume_ml"]])
    return out


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    outputs = spec["outputs_h"]
    rtol = spec["rtol"]
    atol = np.array(spec["atol"])
    runs = spec["runs"]
    start = time.perf_counter()
    trajectories = [simulate(run, outputs, rtol, atol) for run in runs]
    elapsed = time.perf_counter() - start
    with open(sys.argv[2], "w") as f:
        json.dump({"seconds": elapsed, "runs": len(runs), "trajectories": trajectories}, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""OR-Tools CP-SAT model of a cellops scheduling instance (docs/scheduling.md).

Reads the same instance file as `cellops schedule plan` and minimises the same objective:

    sum over planned orders   weight * ((infusion - earliest_day) + lateness_weight * max(0, infusion - due_day))
  + sum over unplanned orders weight * unplanned_penalty

subject to the same constraints: every stage starts at or after the previous stage's end
plus its least gap (transit included) and at most its hold limit after it; a stage that is
the trip lasts its duration plus the transit; each use occupies one unit of a pooled
resource per day; capacity per day comes from the weekday pattern minus outages; every
stage ends (and every use ends) inside the horizon; the last stage ends by latest_day.

Usage: schedule_cpsat.py INSTANCE.json [--time-limit S] [--workers N] [--seed N]
Prints one JSON object: status, objective, bound, solve_s, build_s, orders (slots), and
trajectory: [seconds into the solve, true cost] for each improving solution, the cost
recomputed from the plan (the cost variables are only bounded below, so CP-SAT's own
objective may carry slack), so a benchmark can tell when CP-SAT first matched a plan.
Install: python3 -m pip install ortools
"""

import argparse
import datetime
import json
import sys
import time

from ortools.sat.python import cp_model


def capacity_table(inst, horizon):
    start = datetime.date.fromisoformat(inst["start_date"])
    table = []
    for res in inst["resources"]:
        week = res.get("weekday_capacity") or [res["capacity_per_day"]] * 7
        cap = [week[(start + datetime.timedelta(days=d)).weekday()] for d in range(horizon)]
        for out in res.get("outages", []):
            for d in range(max(out["from_day"], 0), min(out["to_day"], horizon - 1) + 1):
                cap[d] = max(cap[d] - out["units"], 0)
        table.append(cap)
    return table


def routes(inst):
    """(product id, hospital id) -> list of (gap_min, gap_max or None, duration, uses)."""
    sites = {s["id"]: s for s in inst["sites"]}
    cpc = next(s["id"] for s in inst["sites"] if s["kind"] == "cpc")
    res_at = {(r["site"], r["kind"]): i for i, r in enumerate(inst["resources"])}
    out = {}
    for p in inst["products"]:
        for h, site in sites.items():
            if site["kind"] != "hospital":
                continue
            t = site.get("transit_days", 0)
            stages = []
            for st in p["stages"]:
                transit = st.get("transit", "none")
                gap_min = st.get("min_gap_days", 0) + (t if transit == "before" else 0)
                duration = st["duration_days"] + (t if transit == "during" else 0)
                where = cpc if st["site"] == "cpc" else h
                uses = [
                    (res_at[(where, u["kind"])], u.get("offset_days", 0), u["days"])
                    for u in st.get("uses", [])
                ]
                stages.append((gap_min, st.get("hold_max_days"), duration, uses))
            out[(p["id"], h)] = stages
    return out


class Trajectory(cp_model.CpSolverSolutionCallback):
    """Records (seconds into the solve, true cost) of every solution CP-SAT reports."""

    def __init__(self, orders, late_w, penalty):
        super().__init__()
        self.orders = orders
        self.late_w = late_w
        self.penalty = penalty
        self.points = []

    def on_solution_callback(self):
        t = self.wall_time
        cost = 0
        for o, present, end in self.orders:
            w = o.get("weight", 1)
            if self.value(present):
                infusion = self.value(end)
                cost += w * ((infusion - o["earliest_day"]) + self.late_w * max(0, infusion - o["due_day"]))
            else:
                cost += w * self.penalty
        if not self.points or cost < self.points[-1][1]:
            self.points.append([t, cost])


def solve(inst, time_limit, workers, seed):
    t0 = time.perf_counter()
    horizon = inst["horizon_days"]
    late_w = inst["lateness_weight"]
    penalty = inst["unplanned_penalty"]
    cap = capacity_table(inst, horizon)
    route_of = routes(inst)
    m = cp_model.CpModel()
    per_res = [([], []) for _ in inst["resources"]]
    orders = []
    traced = []
    cost_terms = []
    for o in inst["orders"]:
        stages = route_of[(o["product"], o["hospital"])]
        w = o.get("weight", 1)
        present = m.new_bool_var(f"p_{o['id']}")
        starts, ends = [], []
        lo = o["earliest_day"]
        for k, (gap_min, gap_max, duration, uses) in enumerate(stages):
            if k > 0:
                lo += gap_min
            s = m.new_int_var(min(lo, horizon - 1), horizon - 1, f"s_{o['id']}_{k}")
            e = s + duration
            if k == 0:
                m.add(s >= o["earliest_day"]).only_enforce_if(present)
            else:
                m.add(s >= ends[-1] + gap_min).only_enforce_if(present)
                if gap_max is not None:
                    m.add(s <= ends[-1] + gap_max).only_enforce_if(present)
            m.add(e <= horizon - 1).only_enforce_if(present)
            for r, off, days in uses:
                m.add(s + off + days <= horizon).only_enforce_if(present)
                iv = m.new_optional_fixed_size_interval_var(s + off, days, present, f"i_{o['id']}_{k}_{r}_{off}")
                per_res[r][0].append(iv)
                per_res[r][1].append(1)
            starts.append(s)
            ends.append(e)
            lo += duration
        end = ends[-1]
        if o.get("latest_day") is not None:
            m.add(end <= o["latest_day"]).only_enforce_if(present)
        v2v = m.new_int_var(0, 2 * horizon, f"v_{o['id']}")
        late = m.new_int_var(0, 2 * horizon, f"l_{o['id']}")
        m.add(v2v >= end - o["earliest_day"]).only_enforce_if(present)
        m.add(late >= end - o["due_day"]).only_enforce_if(present)
        cost_terms.append(w * v2v + w * late_w * late + w * penalty * (1 - present))
        orders.append((o["id"], present, starts, ends))
        traced.append((o, present, end))
    for r, (intervals, demands) in enumerate(per_res):
        if not intervals:
            continue
        cmax = max(cap[r]) if cap[r] else 0
        # Days with less than the maximum: fixed intervals take the difference.
        d = 0
        while d < horizon:
            lack = cmax - cap[r][d]
            if lack == 0:
                d += 1
                continue
            e = d
            while e + 1 < horizon and cmax - cap[r][e + 1] == lack:
                e += 1
            intervals.append(m.new_fixed_size_interval_var(d, e - d + 1, f"cap_{r}_{d}"))
            demands.append(lack)
            d = e + 1
        m.add_cumulative(intervals, demands, cmax)
    m.minimize(sum(cost_terms))
    build_s = time.perf_counter() - t0
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    trajectory = Trajectory(traced, late_w, penalty)
    t1 = time.perf_counter()
    status = solver.solve(m, trajectory)
    solve_s = time.perf_counter() - t1
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    result = {
        "solver": "ortools-cpsat",
        "version": __import__("ortools").__version__,
        "status": solver.status_name(status),
        "objective": int(round(solver.objective_value)) if found else None,
        "bound": solver.best_objective_bound if found else None,
        "build_s": build_s,
        "solve_s": solve_s,
        "time_limit_s": time_limit,
        "workers": workers,
        "trajectory": trajectory.points,
        "orders": [],
    }
    if found:
        for oid, present, starts, ends in orders:
            slots = []
            if solver.value(present):
                slots = [[solver.value(s), solver.value(e)] for s, e in zip(starts, ends)]
            result["orders"].append({"id": oid, "slots": slots})
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with open(args.instance, encoding="utf-8") as f:
        inst = json.load(f)
    json.dump(solve(inst, args.time_limit, args.workers, args.seed), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

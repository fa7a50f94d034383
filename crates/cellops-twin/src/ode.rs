//! The model's own ODE integrator: explicit Runge–Kutta 5(4) of Dormand and Prince with the
//! same error norm and step-size rule as scipy's `RK45` (so the Python baseline integrates to
//! the same tolerance), landing exactly on each requested end time.

use crate::error::TwinError;

/// Hard limit on accepted plus rejected steps in one [`integrate`] call.
pub const STEPS_MAX: usize = 200_000;
/// Smallest step, in the caller's time unit, before the integrator gives up.
pub const STEP_MIN: f64 = 1e-10;

const SAFETY: f64 = 0.9;
const FACTOR_MIN: f64 = 0.2;
const FACTOR_MAX: f64 = 10.0;

/// Error tolerance per component: a step is accepted when
/// `rms(err_i / (atol_i + rtol · max(|y_i|, |y_new_i|))) ≤ 1`.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance<const N: usize> {
    /// Relative tolerance (dimensionless).
    pub rtol: f64,
    /// Absolute tolerance per component, in that component's unit.
    pub atol: [f64; N],
}

/// Carries the step size between calls so a run split at events does not restart from a
/// guess each time. `step == 0` means "choose an initial step".
#[derive(Debug, Clone, Copy, Default)]
pub struct StepMemory {
    /// The last proposed step, in the caller's time unit.
    pub step: f64,
    /// Right-hand-side evaluations so far (for benchmarks and tests).
    pub evaluations: u64,
}

const C: [f64; 6] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0];
const A2: [f64; 1] = [1.0 / 5.0];
const A3: [f64; 2] = [3.0 / 40.0, 9.0 / 40.0];
const A4: [f64; 3] = [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0];
const A5: [f64; 4] = [
    19372.0 / 6561.0,
    -25360.0 / 2187.0,
    64448.0 / 6561.0,
    -212.0 / 729.0,
];
const A6: [f64; 5] = [
    9017.0 / 3168.0,
    -355.0 / 33.0,
    46732.0 / 5247.0,
    49.0 / 176.0,
    -5103.0 / 18656.0,
];
const B: [f64; 6] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
];
/// Fifth-order minus embedded fourth-order weights (stages 1..7), as in scipy's `RK45.E`.
const E: [f64; 7] = [
    -71.0 / 57600.0,
    0.0,
    71.0 / 16695.0,
    -71.0 / 1920.0,
    17253.0 / 339200.0,
    -22.0 / 525.0,
    1.0 / 40.0,
];

fn combine<const N: usize>(y: &[f64; N], h: f64, ks: &[&[f64; N]], w: &[f64]) -> [f64; N] {
    let mut out = *y;
    for (k, wi) in ks.iter().zip(w) {
        if *wi != 0.0 {
            for i in 0..N {
                out[i] += h * wi * k[i];
            }
        }
    }
    out
}

fn error_norm<const N: usize>(
    err: &[f64; N],
    y: &[f64; N],
    y_new: &[f64; N],
    tol: &Tolerance<N>,
) -> f64 {
    let mut sum = 0.0;
    for i in 0..N {
        let scale = tol.atol[i] + tol.rtol * y[i].abs().max(y_new[i].abs());
        let r = err[i] / scale;
        sum += r * r;
    }
    (sum / N as f64).sqrt()
}

fn initial_step<const N: usize>(
    f: &mut impl FnMut(f64, &[f64; N]) -> [f64; N],
    t0: f64,
    y0: &[f64; N],
    f0: &[f64; N],
    tol: &Tolerance<N>,
    memory: &mut StepMemory,
) -> f64 {
    // Hairer, Nørsett & Wanner, "Solving ODEs I", II.4, as used by scipy.
    let scale: Vec<f64> = (0..N)
        .map(|i| tol.atol[i] + tol.rtol * y0[i].abs())
        .collect();
    let rms =
        |v: &[f64; N]| ((0..N).map(|i| (v[i] / scale[i]).powi(2)).sum::<f64>() / N as f64).sqrt();
    let d0 = rms(y0);
    let d1 = rms(f0);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    let y1 = combine(y0, h0, &[f0], &[1.0]);
    let f1 = f(t0 + h0, &y1);
    memory.evaluations += 1;
    let mut diff = [0.0; N];
    for i in 0..N {
        diff[i] = f1[i] - f0[i];
    }
    let d2 = rms(&diff) / h0;
    let h1 = if d1 <= 1e-15 && d2 <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    (100.0 * h0).min(h1)
}

/// Integrates `dy/dt = f(t, y)` from `t0` to `t1` (`t1 ≥ t0`) and returns `y(t1)`.
/// `names` labels the components for the [`TwinError::NonFinite`] error; every accepted
/// state is checked, so a NaN or infinity is reported with its time instead of returned.
pub fn integrate<const N: usize>(
    mut f: impl FnMut(f64, &[f64; N]) -> [f64; N],
    t0: f64,
    y0: [f64; N],
    t1: f64,
    tol: &Tolerance<N>,
    names: &[&'static str; N],
    memory: &mut StepMemory,
) -> Result<[f64; N], TwinError> {
    debug_assert!(t1 >= t0, "integrate backwards: {t0} -> {t1}");
    check_state(&y0, names, t0)?;
    if t1 <= t0 {
        return Ok(y0);
    }
    let mut t = t0;
    let mut y = y0;
    let mut k1 = f(t, &y);
    memory.evaluations += 1;
    let mut h = if memory.step > 0.0 {
        memory.step
    } else {
        initial_step(&mut f, t, &y, &k1, tol, memory)
    };
    let mut steps = 0usize;
    while t < t1 {
        steps += 1;
        if steps > STEPS_MAX {
            return Err(TwinError::TooManySteps {
                steps_max: STEPS_MAX,
                time_h: t,
            });
        }
        if h < STEP_MIN {
            return Err(TwinError::StepTooSmall {
                step_h_min: STEP_MIN,
                time_h: t,
            });
        }
        let last = t + h >= t1;
        let h_try = if last { t1 - t } else { h };
        let k2 = f(t + C[1] * h_try, &combine(&y, h_try, &[&k1], &A2));
        let k3 = f(t + C[2] * h_try, &combine(&y, h_try, &[&k1, &k2], &A3));
        let k4 = f(t + C[3] * h_try, &combine(&y, h_try, &[&k1, &k2, &k3], &A4));
        let k5 = f(
            t + C[4] * h_try,
            &combine(&y, h_try, &[&k1, &k2, &k3, &k4], &A5),
        );
        let k6 = f(
            t + C[5] * h_try,
            &combine(&y, h_try, &[&k1, &k2, &k3, &k4, &k5], &A6),
        );
        let y_new = combine(&y, h_try, &[&k1, &k2, &k3, &k4, &k5, &k6], &B);
        let k7 = f(t + h_try, &y_new);
        memory.evaluations += 6;
        let mut err = [0.0; N];
        let ks = [&k1, &k2, &k3, &k4, &k5, &k6, &k7];
        for i in 0..N {
            err[i] = h_try * ks.iter().zip(E).map(|(k, e)| k[i] * e).sum::<f64>();
        }
        let norm = error_norm(&err, &y, &y_new, tol);
        if !norm.is_finite() {
            // A non-finite error estimate means a stage hit a NaN: shrink and retry, and
            // report it if the step becomes too small.
            h = h_try * FACTOR_MIN;
            continue;
        }
        if norm <= 1.0 {
            let factor = if norm == 0.0 {
                FACTOR_MAX
            } else {
                (SAFETY * norm.powf(-0.2)).clamp(FACTOR_MIN, FACTOR_MAX)
            };
            t = if last { t1 } else { t + h_try };
            y = y_new;
            check_state(&y, names, t)?;
            k1 = k7;
            // Keep the free-running step, not the shortened last one, for the next call.
            let h_next = h_try * factor;
            h = if last { h.max(h_next) } else { h_next };
        } else {
            h = h_try * (SAFETY * norm.powf(-0.2)).clamp(FACTOR_MIN, 1.0);
        }
    }
    memory.step = h;
    Ok(y)
}

fn check_state<const N: usize>(
    y: &[f64; N],
    names: &[&'static str; N],
    t: f64,
) -> Result<(), TwinError> {
    match y.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(TwinError::NonFinite {
            quantity: names[i],
            time_h: t,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL1: Tolerance<1> = Tolerance {
        rtol: 1e-8,
        atol: [1e-12],
    };

    #[test]
    fn exponential_growth_matches_closed_form() {
        let mut mem = StepMemory::default();
        let y = integrate(
            |_, y| [0.3 * y[0]],
            0.0,
            [2.0],
            10.0,
            &TOL1,
            &["x"],
            &mut mem,
        )
        .unwrap();
        let exact = 2.0 * (3.0f64).exp();
        assert!((y[0] - exact).abs() / exact < 1e-7, "{} vs {exact}", y[0]);
    }

    #[test]
    fn logistic_matches_closed_form_across_split_calls() {
        let (r, k, x0) = (0.5, 100.0, 1.0);
        let exact = |t: f64| k / (1.0 + (k / x0 - 1.0) * (-r * t).exp());
        let mut mem = StepMemory::default();
        let mut y = [x0];
        for i in 0..20 {
            let (a, b) = (i as f64, (i + 1) as f64);
            y = integrate(
                |_, y| [r * y[0] * (1.0 - y[0] / k)],
                a,
                y,
                b,
                &TOL1,
                &["x"],
                &mut mem,
            )
            .unwrap();
            assert!((y[0] - exact(b)).abs() / exact(b) < 1e-6, "t={b}");
        }
    }

    #[test]
    fn harmonic_oscillator_conserves_phase() {
        let tol = Tolerance {
            rtol: 1e-9,
            atol: [1e-12; 2],
        };
        let mut mem = StepMemory::default();
        let y = integrate(
            |_, y| [y[1], -y[0]],
            0.0,
            [1.0, 0.0],
            2.0 * std::f64::consts::PI,
            &tol,
            &["x", "v"],
            &mut mem,
        )
        .unwrap();
        assert!((y[0] - 1.0).abs() < 1e-7 && y[1].abs() < 1e-7, "{y:?}");
    }

    #[test]
    fn nan_is_reported_with_its_component() {
        let mut mem = StepMemory::default();
        let err = integrate(
            |t, y| [if t > 1.0 { f64::NAN } else { y[0] }],
            0.0,
            [1.0],
            2.0,
            &TOL1,
            &["xv"],
            &mut mem,
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TwinError::StepTooSmall { .. } | TwinError::NonFinite { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn zero_length_interval_returns_the_start() {
        let mut mem = StepMemory::default();
        let y = integrate(|_, _| [1.0], 3.0, [5.0], 3.0, &TOL1, &["x"], &mut mem).unwrap();
        assert_eq!(y, [5.0]);
    }
}

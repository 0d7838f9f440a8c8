//! Exact binomial laws for the judge's planned decision look ([`crate::planned`]) and the
//! benchmark's oracle: `ln Γ`, binomial probability mass functions on a window around the mean,
//! and their convolution. Plain `f64` arithmetic, total on its inputs: degenerate arguments give
//! a documented value, never a panic.

/// `ln Γ(x)` for `x > 0` (`+∞` otherwise): the Lanczos approximation with `g = 7` and nine
/// coefficients (C. Lanczos, SIAM J. Numer. Anal. B 1, 1964; the coefficients of P. Godfrey as
/// tabulated for this `g`), relative error below `1e-14` on the arguments used here (`x ≥ 1`),
/// with the reflection formula below `x = 0.5`.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x.is_nan() || x <= 0.0 || !x.is_finite() {
        return f64::INFINITY;
    }
    if x < 0.5 {
        // Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// A probability mass function on the whole numbers `first, first + 1, …`; outside its window
/// the mass is below `1e-40` and taken as 0.
#[derive(Clone, Debug, PartialEq)]
pub struct Pmf {
    /// The value of `probs[0]`.
    pub first: u64,
    /// Probabilities of `first`, `first + 1`, ….
    pub probs: Vec<f64>,
}

impl Pmf {
    /// The point mass at 0.
    pub fn zero() -> Pmf {
        Pmf {
            first: 0,
            probs: vec![1.0],
        }
    }

    /// `P(X ≥ x)`.
    pub fn upper_tail(&self, x: u64) -> f64 {
        let skip = x.saturating_sub(self.first) as usize;
        self.probs.iter().skip(skip).sum::<f64>().min(1.0)
    }

    /// `P(X ≤ x)`.
    pub fn lower_tail(&self, x: u64) -> f64 {
        if x < self.first {
            return 0.0;
        }
        let take = (x - self.first).saturating_add(1) as usize;
        self.probs.iter().take(take).sum::<f64>().min(1.0)
    }

    /// The law of `X + Y` for independent `X ~ self`, `Y ~ other`.
    pub fn convolve(&self, other: &Pmf) -> Pmf {
        let mut probs = vec![0.0; self.probs.len() + other.probs.len() - 1];
        for (i, a) in self.probs.iter().enumerate() {
            if *a == 0.0 {
                continue;
            }
            for (j, b) in other.probs.iter().enumerate() {
                probs[i + j] += a * b;
            }
        }
        Pmf {
            first: self.first + other.first,
            probs,
        }
    }
}

/// `Binomial(n, p)` on the window `mean ± (12 sd + 6)`, clamped to `0..=n`: the mass outside is
/// below `1e-30` (a Chernoff bound), far below the error probabilities compared with it.
/// Each term is `exp(ln C(n,k) + k ln p + (n−k) ln(1−p))` with [`ln_gamma`]. `p` is clamped to
/// `[0, 1]`; `p = 0` or `1` give point masses.
pub fn binomial_pmf(n: u64, p: f64) -> Pmf {
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
    if n == 0 || p == 0.0 {
        return Pmf::zero();
    }
    if p == 1.0 {
        return Pmf {
            first: n,
            probs: vec![1.0],
        };
    }
    let nf = n as f64;
    let mean = nf * p;
    let sd = (nf * p * (1.0 - p)).sqrt();
    let low = (mean - 12.0 * sd - 6.0).floor().max(0.0) as u64;
    let high = ((mean + 12.0 * sd + 6.0).ceil() as u64).min(n);
    let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
    let ln_n = ln_gamma(nf + 1.0);
    let probs = (low..=high)
        .map(|k| {
            let kf = k as f64;
            (ln_n - ln_gamma(kf + 1.0) - ln_gamma(nf - kf + 1.0) + kf * ln_p + (nf - kf) * ln_q)
                .exp()
        })
        .collect();
    Pmf { first: low, probs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_gives_factorials() {
        for (n, fact) in [(1.0, 1.0f64), (5.0, 24.0), (11.0, 3_628_800.0)] {
            assert!((ln_gamma(n) - fact.ln()).abs() < 1e-12, "{n}");
        }
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
        assert_eq!(ln_gamma(0.0), f64::INFINITY);
    }

    #[test]
    fn binomial_tails_are_exact_on_a_small_case() {
        // Binomial(10, 0.3): P(X ≥ 7) = 0.010592078, P(X ≤ 1) = 0.1493083.
        let pmf = binomial_pmf(10, 0.3);
        assert!((pmf.upper_tail(7) - 0.010_592_078).abs() < 1e-9);
        assert!((pmf.lower_tail(1) - 0.149_308_3).abs() < 1e-7);
        assert!((pmf.upper_tail(0) - 1.0).abs() < 1e-12);
        // A convolution of two binomials with the same p is a binomial.
        let sum = binomial_pmf(4, 0.3).convolve(&binomial_pmf(6, 0.3));
        assert!((sum.upper_tail(7) - 0.010_592_078).abs() < 1e-9);
        assert_eq!(binomial_pmf(0, 0.5), Pmf::zero());
        assert_eq!(binomial_pmf(3, f64::NAN), Pmf::zero());
    }
}

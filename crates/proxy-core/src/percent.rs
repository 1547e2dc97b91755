//! Envoy's fractional percentages and how a random value is tested against one.

/// The denominator of a [`FractionalPercent`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Denominator {
    /// Out of 100.
    Hundred,
    /// Out of 10 000.
    TenThousand,
    /// Out of 1 000 000.
    Million,
}

impl Denominator {
    /// The denominator's value.
    pub const fn value(self) -> u64 {
        match self {
            Self::Hundred => 100,
            Self::TenThousand => 10_000,
            Self::Million => 1_000_000,
        }
    }
}

/// A probability as Envoy represents it: `numerator / denominator`.
///
/// A draw `r` fires when `r % denominator < numerator` (Envoy's
/// `ProtobufPercentHelper::evaluateFractionalPercent`), so a numerator of 0 never fires and a
/// numerator at or above the denominator always does.
///
/// Istio writes percentages as `Percent { value: f64 }` (0–100) and pilot converts them to
/// `uint32(value * 10000)` per million, truncating: [`from_istio`](Self::from_istio) does the
/// same. Mirror policies without a percentage use the integer 100 out of 100
/// ([`HUNDRED_PERCENT`](Self::HUNDRED_PERCENT)).
///
/// ```
/// use portcullis_proxy_core::action::FractionalPercent;
///
/// let p = FractionalPercent::from_istio(25.5);
/// assert_eq!(p.per_million(), 255_000);
/// assert!(p.sample(254_999));
/// assert!(!p.sample(255_000));
/// assert!(p.sample(1_000_000 + 3)); // only the remainder counts
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FractionalPercent {
    numerator: u32,
    denominator: Denominator,
}

impl FractionalPercent {
    /// Never fires.
    pub const ZERO: Self = Self::new(0, Denominator::Million);
    /// Always fires (100 out of 100).
    pub const HUNDRED_PERCENT: Self = Self::new(100, Denominator::Hundred);

    /// `numerator / denominator`.
    pub const fn new(numerator: u32, denominator: Denominator) -> Self {
        Self {
            numerator,
            denominator,
        }
    }

    /// `per_million / 1 000 000`.
    pub const fn from_per_million(per_million: u32) -> Self {
        Self::new(per_million, Denominator::Million)
    }

    /// Pilot's conversion of an Istio `Percent` (0–100, fractional): `value * 10000` per
    /// million, truncated toward zero. NaN and negative values give 0.
    pub fn from_istio(value: f64) -> Self {
        // `as` saturates and maps NaN to 0, which is the clamping we want.
        Self::from_per_million((value * 10_000.0) as u32)
    }

    /// Pilot's conversion of a deprecated integer percent field: `percent / 100`.
    pub const fn from_integer_percent(percent: u32) -> Self {
        Self::new(percent, Denominator::Hundred)
    }

    /// The numerator.
    pub const fn numerator(self) -> u32 {
        self.numerator
    }

    /// The denominator.
    pub const fn denominator(self) -> Denominator {
        self.denominator
    }

    /// The same probability expressed per million (saturating at the numerator's scale;
    /// values above 100 % are not capped).
    pub const fn per_million(self) -> u64 {
        let scale = 1_000_000 / self.denominator.value();
        self.numerator as u64 * scale
    }

    /// Whether this percentage can never fire.
    pub const fn is_zero(self) -> bool {
        self.numerator == 0
    }

    /// Whether a draw of `random` fires: `random % denominator < numerator`.
    pub const fn sample(self, random: u64) -> bool {
        random % self.denominator.value() < self.numerator as u64
    }
}

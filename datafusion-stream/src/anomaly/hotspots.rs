//! The HOTSPOTS algorithm of Kinesis Data Analytics (KDA) SQL, as a pure, engine-independent
//! model: feed it one numeric point per input row, get the row's `HOTSPOTS_RESULT` JSON back.
//!
//! ```text
//!  input row (numeric columns, in cursor order) ──► point [x0, x1, .., x(d-1)], all finite
//!                                                      │ update()
//!   ┌──────────────────────────── HotspotsModel ───────┼──────────────────────────────────┐
//!   │ window: the last windowSize points, a ring of     ▼                                  │
//!   │   slots (slot = seq % windowSize), per slot:  coords, cell, neighbour list (slots   │
//!   │   within ε, oldest first; neighbour count = list length + 1)                        │
//!   │ grid:   HashMap<cell of side ε over the first min(d,3) dims, slots in that cell>     │
//!   │                                                                                      │
//!   │ 1. evict the oldest point (window full): pop it off the front of its neighbours'    │
//!   │    lists                                                                             │
//!   │ 2. insert the new point: find its neighbours (3^k cells), append it to their lists  │
//!   │ 3. if a core point, or a point next to one, entered or left the window:             │
//!   │      re-cluster (DBSCAN over core points, oldest first) ──► hotspots ──► JSON cache  │
//!   │    else the clusters cannot have changed: reuse the cached JSON                      │
//!   └──────────────────────────────────────────────────────────────────────────────────────┘
//!                                                      │
//!                                                      ▼
//!   {"hotspots":[{"density":69.44444444444444,"minValues":[1.5,2.0],"maxValues":[2.5,3.0]},..]}
//! ```
//!
//! # Semantics (SQLRef `sqlrf-hotspots`, Dev `app-hotspots-detection`; `SPEC.md` §1.10, Example J)
//! * **Window**: the last `windowSize` points, *including* the current row's point. Before
//!   `windowSize` rows have arrived the window holds all rows so far (there is no warm-up
//!   period with empty results).
//! * **Clusters** are DBSCAN's with ε = `scanRadius` and minPts =
//!   `minimumNumberOfPointsInAHotspot`, Euclidean distance: a point is a *core* point when at
//!   least minPts window points (itself included) lie within distance ≤ ε of it; core points
//!   within ε of each other are in the same cluster; a non-core point within ε of a core point
//!   is a *border* point of that cluster. A border point next to several clusters belongs to
//!   the one whose oldest core point is oldest (DBSCAN expanding clusters in arrival order).
//!   Every cluster therefore has at least minPts points. Every cluster is reported as a
//!   hotspot; callers filter by density (as the KDA docs say: "returns all potential
//!   hotspots").
//! * **Density** follows the KDA definition "the number of records in the hotspot divided by
//!   the hotspot size", with the size made precise as the volume of the hotspot's bounding box
//!   grown by ε/2 on every side:
//!
//!   ```text
//!   density = n / Π_{i=0}^{d-1} (maxValues[i] - minValues[i] + scanRadius)
//!   ```
//!
//!   It is an absolute density (points per unit of volume in the units of the input columns),
//!   so it compares directly with the background density of the data (window points / volume
//!   of the data's range) and with fixed thresholds such as the Developer Guide viewer's
//!   `density >= 40`. The `+ scanRadius` keeps the size of a degenerate hotspot (all points on
//!   a line or at one spot) positive — each point stands for the ε-cell around it — so the
//!   density of any hotspot is at most `n / scanRadius^d`. If the product under- or overflows
//!   it is computed in log space; the result is clamped to the finite range `[0, f64::MAX]`.
//! * **Order**: hotspots by density, descending; ties in arrival order of their oldest core
//!   point. The output is a pure function of the window's points and their order, so it is
//!   deterministic and survives a checkpoint round trip (see [`HotspotsCheckpoint`]).
//! * **JSON** (`HOTSPOTS_RESULT`): `{"hotspots":[{"density":D,"minValues":[..],"maxValues":[..]},..]}`
//!   with no whitespace, keys in that order, arrays indexed by dimension (the numeric columns in
//!   cursor order); no hotspot gives `{"hotspots":[]}`. Every number is written in Rust's
//!   shortest round-trip form for `f64` (`{:?}`): always with a decimal point or an exponent,
//!   e.g. `100.0`, `0.25`, `1e-7`, `1e16`; parsing it gives back the exact `f64`.
//! * **Inputs**: 1 to [`MAX_DIMENSIONS`] dimensions (KDA's limit on input columns); every
//!   coordinate must be finite: NaN or ±∞ is an error naming the value and dimension, and the
//!   model is left unchanged. (Converting SQL NULLs and column types is the operator's job.)
//!
//! # Cost
//! Inserting a point visits the 3^k grid cells around it (k = min(d, 3); the grid only indexes
//! the first k dimensions, the full distance is then checked): O(3^k + points in those cells).
//! Evicting is O(its neighbours). Re-clustering walks the neighbour lists of the core points,
//! O(Σ neighbours of core points), with no distance computations, and only happens when a core
//! point or a point within ε of one enters or leaves the window; rows of sparse background
//! noise only touch their own neighbourhood. Memory: O(windowSize × d + Σ neighbours). The
//! worst case is a window where most points are within ε of each other: ~windowSize² list
//! entries (4 MB at 1000); re-clustering stops as soon as every point has a cluster, so a
//! window that is one big cluster (e.g. a constant signal) costs O(windowSize) per row, but
//! one that is half a tight cluster and half noise costs O(windowSize²) per changing row.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

use datafusion::common::{exec_err, plan_err, Result};
use serde::{Deserialize, Serialize};

/// Smallest `windowSize` KDA accepts.
pub const MIN_WINDOW_SIZE: usize = 100;
/// Largest `windowSize` KDA accepts.
pub const MAX_WINDOW_SIZE: usize = 1000;
/// Smallest `minimumNumberOfPointsInAHotspot` KDA accepts (the largest is `windowSize`).
pub const MIN_POINTS_IN_HOTSPOT: usize = 2;
/// Most dimensions (numeric columns) a model takes: KDA's limit on the columns of an input
/// schema (`RecordColumns` 1..1000).
pub const MAX_DIMENSIONS: usize = 1000;
/// The grid indexes at most this many leading dimensions (3^3 = 27 cells per query).
const GRID_DIMS: usize = 3;

/// The three numeric arguments of `HOTSPOTS(CURSOR(..), windowSize, scanRadius,
/// minimumNumberOfPointsInAHotspot)`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
pub struct HotspotsParams {
    /// `windowSize`: how many of the latest records are clustered, 100..=1000.
    pub window_size: usize,
    /// `scanRadius`: DBSCAN's ε, finite and > 0.
    pub scan_radius: f64,
    /// `minimumNumberOfPointsInAHotspot`: DBSCAN's minPts, 2..=windowSize.
    pub min_points: usize,
}

impl HotspotsParams {
    /// Checks the KDA ranges; the error names `HOTSPOTS`, the parameter, its range and value.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_WINDOW_SIZE..=MAX_WINDOW_SIZE).contains(&self.window_size) {
            return plan_err!(
                "HOTSPOTS: windowSize must be between {MIN_WINDOW_SIZE} and {MAX_WINDOW_SIZE} \
                 inclusive, got {}",
                self.window_size
            );
        }
        if !(self.scan_radius.is_finite() && self.scan_radius > 0.0) {
            return plan_err!(
                "HOTSPOTS: scanRadius must be a finite number greater than 0, got {}",
                self.scan_radius
            );
        }
        if !(MIN_POINTS_IN_HOTSPOT..=self.window_size).contains(&self.min_points) {
            return plan_err!(
                "HOTSPOTS: minimumNumberOfPointsInAHotspot must be between \
                 {MIN_POINTS_IN_HOTSPOT} and windowSize ({}) inclusive, got {}",
                self.window_size,
                self.min_points
            );
        }
        Ok(())
    }
}

/// `scanRadius` is validated finite (never NaN) before a model or plan node is built, so
/// comparing its bits is an equivalence (plan nodes that carry the parameters need `Eq` and
/// `Hash`).
impl Eq for HotspotsParams {}

impl std::hash::Hash for HotspotsParams {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.window_size.hash(state);
        self.scan_radius.to_bits().hash(state);
        self.min_points.hash(state);
    }
}

/// One hotspot of the current window (an entry of the `hotspots` JSON array).
#[derive(Debug, Clone, PartialEq)]
pub struct Hotspot {
    /// `n / Π (max - min + scanRadius)`, see the module docs.
    pub density: f64,
    /// Smallest coordinate per dimension over the hotspot's points.
    pub min_values: Vec<f64>,
    /// Largest coordinate per dimension over the hotspot's points.
    pub max_values: Vec<f64>,
    /// Number of window points in the hotspot (core and border); not part of the JSON.
    pub points: usize,
}

/// Grid cell: `floor(x / ε)` of the first `min(d, 3)` coordinates (the rest 0).
type CellKey = [i64; GRID_DIMS];

/// A small hasher for cell keys (SipHash would dominate the neighbour queries): words are
/// folded in with a multiply, `finish` mixes with SplitMix64's finaliser so that both the low
/// bits (bucket) and the high bits (tag) of hashbrown's hash are spread. Only lookups depend on
/// it; no output depends on the map's iteration order.
#[derive(Default)]
struct CellHasher(u64);

impl CellHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

type Grid = HashMap<CellKey, Vec<u32>, BuildHasherDefault<CellHasher>>;

const UNLABELLED: u32 = u32::MAX;

/// Streaming HOTSPOTS state for one input stream (or one partition of it).
///
/// Serialised through [`HotspotsCheckpoint`] (parameters, dimensions and the window's points,
/// oldest first); the grid, neighbour lists and the result are rebuilt on deserialisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "HotspotsCheckpoint", into = "HotspotsCheckpoint")]
pub struct HotspotsModel {
    params: HotspotsParams,
    dims: usize,
    /// 1/ε if finite (ε is not subnormal-tiny), else 0 and distances divide by ε.
    inv_radius: f64,
    /// Coordinates, `dims` per slot; slot of sequence number s = s % window_size.
    coords: Vec<f64>,
    /// Per slot: the slots of the other window points within ε, oldest first.
    adjacent: Vec<VecDeque<u32>>,
    /// Per slot: its grid cell.
    cells: Vec<CellKey>,
    /// Points in the window.
    len: usize,
    /// Sequence number the next point gets; the oldest point has `next_seq - len`.
    next_seq: u64,
    grid: Grid,
    /// Hotspots of the current window, in output order.
    hotspots: Vec<Hotspot>,
    /// `HOTSPOTS_RESULT` of the current window.
    json: String,
    /// Scratch buffers (kept to avoid allocating per row).
    labels: Vec<u32>,
    stack: Vec<u32>,
    found: Vec<u32>,
}

/// Serialised form of a [`HotspotsModel`] (what a checkpoint stores). Floating-point values
/// are stored as their IEEE-754 bit patterns ([`f64::to_bits`]) so that they come back exactly
/// through any serde format (text formats may round a decimal to a neighbouring `f64`, which
/// would change later results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HotspotsCheckpoint {
    /// `windowSize`.
    pub window_size: usize,
    /// `scanRadius`, as `f64::to_bits`.
    pub scan_radius_bits: u64,
    /// `minimumNumberOfPointsInAHotspot`.
    pub min_points: usize,
    /// Number of dimensions of every point.
    pub dimensions: usize,
    /// Total number of points the model has seen (the next point's sequence number).
    pub seen: u64,
    /// The window's points, oldest first, flattened (`dimensions` values per point), as
    /// `f64::to_bits`.
    pub points: Vec<u64>,
}

impl From<HotspotsModel> for HotspotsCheckpoint {
    fn from(model: HotspotsModel) -> Self {
        let mut points = Vec::with_capacity(model.len * model.dims);
        for seq in model.oldest_seq()..model.next_seq {
            points.extend(model.point(model.slot(seq)).iter().map(|x| x.to_bits()));
        }
        HotspotsCheckpoint {
            window_size: model.params.window_size,
            scan_radius_bits: model.params.scan_radius.to_bits(),
            min_points: model.params.min_points,
            dimensions: model.dims,
            seen: model.next_seq,
            points,
        }
    }
}

impl TryFrom<HotspotsCheckpoint> for HotspotsModel {
    type Error = datafusion::error::DataFusionError;

    fn try_from(cp: HotspotsCheckpoint) -> Result<Self> {
        let params = HotspotsParams {
            window_size: cp.window_size,
            scan_radius: f64::from_bits(cp.scan_radius_bits),
            min_points: cp.min_points,
        };
        let mut model = HotspotsModel::try_new(params, cp.dimensions)?;
        let dims = cp.dimensions;
        let n = cp.points.len() / dims;
        if !cp.points.len().is_multiple_of(dims) || n > cp.window_size || (n as u64) > cp.seen {
            return exec_err!(
                "HOTSPOTS checkpoint: {} values do not make at most windowSize ({}) points of \
                 {dims} dimensions out of {} seen",
                cp.points.len(),
                cp.window_size,
                cp.seen
            );
        }
        model.next_seq = cp.seen - n as u64;
        let mut point = vec![0.0; dims];
        for bits in cp.points.chunks_exact(dims) {
            for (x, &b) in point.iter_mut().zip(bits) {
                *x = f64::from_bits(b);
            }
            check_point(&point, dims)?;
            model.insert(&point);
        }
        model.recluster();
        Ok(model)
    }
}

impl HotspotsModel {
    /// An empty model for points of `dimensions` coordinates (1..=[`MAX_DIMENSIONS`]).
    pub fn try_new(params: HotspotsParams, dimensions: usize) -> Result<Self> {
        params.validate()?;
        if !(1..=MAX_DIMENSIONS).contains(&dimensions) {
            return plan_err!(
                "HOTSPOTS: the input must have between 1 and {MAX_DIMENSIONS} numeric columns, \
                 got {dimensions}"
            );
        }
        let inv = 1.0 / params.scan_radius;
        let mut model = HotspotsModel {
            params,
            dims: dimensions,
            inv_radius: if inv.is_finite() { inv } else { 0.0 },
            coords: Vec::new(),
            adjacent: Vec::new(),
            cells: Vec::new(),
            len: 0,
            next_seq: 0,
            grid: Grid::default(),
            hotspots: Vec::new(),
            json: String::new(),
            labels: Vec::new(),
            stack: Vec::new(),
            found: Vec::new(),
        };
        model.render_json();
        Ok(model)
    }

    /// Adds `point` (evicting the oldest point once the window holds `windowSize` points) and
    /// returns the `HOTSPOTS_RESULT` JSON of the window that now ends with `point` (the cached
    /// string, not a copy).
    ///
    /// Errors (model unchanged): wrong number of coordinates, or a NaN / infinite coordinate.
    pub fn update(&mut self, point: &[f64]) -> Result<&str> {
        check_point(point, self.dims)?;
        let mut changed = false;
        if self.len == self.params.window_size {
            changed |= self.evict_oldest();
        }
        changed |= self.insert(point);
        if changed {
            self.recluster();
        }
        Ok(&self.json)
    }

    /// The hotspots of the current window, in output order (density descending).
    pub fn hotspots(&self) -> &[Hotspot] {
        &self.hotspots
    }

    /// The `HOTSPOTS_RESULT` JSON of the current window.
    pub fn result_json(&self) -> &str {
        &self.json
    }

    /// The parameters the model was built with.
    pub fn params(&self) -> &HotspotsParams {
        &self.params
    }

    /// Number of coordinates per point.
    pub fn dimensions(&self) -> usize {
        self.dims
    }

    /// Number of points in the window.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first point.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate bytes of state (for memory accounting): coordinates, neighbour lists, grid,
    /// hotspots and the cached JSON.
    pub fn size(&self) -> usize {
        use std::mem::size_of;
        let adjacent: usize = self
            .adjacent
            .iter()
            .map(|a| size_of::<VecDeque<u32>>() + a.capacity() * size_of::<u32>())
            .sum();
        let grid: usize = self
            .grid
            .values()
            .map(|v| size_of::<CellKey>() + size_of::<Vec<u32>>() + v.capacity() * size_of::<u32>())
            .sum();
        let hotspots: usize = self
            .hotspots
            .iter()
            .map(|h| {
                size_of::<Hotspot>()
                    + (h.min_values.capacity() + h.max_values.capacity()) * size_of::<f64>()
            })
            .sum();
        size_of::<Self>()
            + self.coords.capacity() * size_of::<f64>()
            + adjacent
            + self.cells.capacity() * size_of::<CellKey>()
            + grid
            + hotspots
            + self.json.capacity()
            + (self.labels.capacity() + self.stack.capacity() + self.found.capacity())
                * size_of::<u32>()
    }

    fn oldest_seq(&self) -> u64 {
        self.next_seq - self.len as u64
    }

    fn slot(&self, seq: u64) -> usize {
        // window_size <= 1000, so the remainder fits any usize.
        (seq % self.params.window_size as u64) as usize
    }

    fn point(&self, slot: usize) -> &[f64] {
        &self.coords[slot * self.dims..(slot + 1) * self.dims]
    }

    fn cell_of(&self, point: &[f64]) -> CellKey {
        let mut key = [0i64; GRID_DIMS];
        for (k, x) in key.iter_mut().zip(point) {
            // `as` saturates: far-out points share the extreme cells, which stays correct
            // because the exact distance is checked for every candidate.
            *k = (x / self.params.scan_radius).floor() as i64;
        }
        key
    }

    /// Distance(a, b) <= ε, computed on coordinates scaled by 1/ε (no overflow of ε²).
    fn within(&self, a: &[f64], b: &[f64]) -> bool {
        let mut sum = 0.0;
        if self.inv_radius > 0.0 {
            for (x, y) in a.iter().zip(b) {
                let t = (x - y) * self.inv_radius;
                sum += t * t;
                if sum > 1.0 {
                    return false;
                }
            }
        } else {
            for (x, y) in a.iter().zip(b) {
                let t = (x - y) / self.params.scan_radius;
                sum += t * t;
                if sum > 1.0 {
                    return false;
                }
            }
        }
        true
    }

    /// Fills `found` with the slots within ε of `point` (in cell `key`), the point's own slot
    /// included if it is in the grid.
    fn collect(&self, point: &[f64], key: CellKey, found: &mut Vec<u32>) {
        found.clear();
        let k = self.dims.min(GRID_DIMS);
        let cells = 3usize.pow(k as u32);
        'cells: for code in 0..cells {
            let mut cell = key;
            let mut rest = code;
            for c in cell.iter_mut().take(k) {
                let offset = (rest % 3) as i64 - 1;
                rest /= 3;
                // A saturated cell has no neighbour beyond it (and must not be visited twice).
                match c.checked_add(offset) {
                    Some(v) => *c = v,
                    None => continue 'cells,
                }
            }
            if let Some(slots) = self.grid.get(&cell) {
                for &s in slots {
                    if self.within(point, self.point(s as usize)) {
                        found.push(s);
                    }
                }
            }
        }
    }

    /// Number of window points within ε of the point in `slot`, itself included.
    fn count(&self, slot: usize) -> usize {
        self.adjacent[slot].len() + 1
    }

    /// Removes the oldest point. Returns true if that can change the clusters: the point was
    /// a core point or next to one.
    fn evict_oldest(&mut self) -> bool {
        let slot = self.slot(self.oldest_seq());
        let min_points = self.params.min_points;
        let mut changed = self.count(slot) >= min_points;
        let mut list = std::mem::take(&mut self.adjacent[slot]);
        for &s in &list {
            let theirs = &mut self.adjacent[s as usize];
            changed |= theirs.len() + 1 >= min_points;
            // Lists are in arrival order and this is the oldest point: it is at the front.
            let front = theirs.pop_front();
            debug_assert_eq!(front, Some(slot as u32));
        }
        list.clear();
        self.adjacent[slot] = list;
        let key = self.cells[slot];
        if let Some(slots) = self.grid.get_mut(&key) {
            if let Some(pos) = slots.iter().position(|&s| s as usize == slot) {
                slots.swap_remove(pos);
            }
            if slots.is_empty() {
                self.grid.remove(&key);
            }
        }
        self.len -= 1;
        changed
    }

    /// Adds a point (the window has room). Returns true if that can change the clusters: the
    /// point is a core point, next to one, or made a neighbour one.
    fn insert(&mut self, point: &[f64]) -> bool {
        let window = self.params.window_size;
        let oldest = self.slot(self.oldest_seq());
        let slot = self.slot(self.next_seq);
        let key = self.cell_of(point);
        if slot >= self.cells.len() {
            // Slots are allocated as the window first fills (a restored checkpoint may start
            // anywhere in the ring; slots not yet used are never read).
            self.coords.resize((slot + 1) * self.dims, 0.0);
            self.adjacent.resize_with(slot + 1, VecDeque::new);
            self.cells.resize(slot + 1, [0; GRID_DIMS]);
        }
        self.coords[slot * self.dims..(slot + 1) * self.dims].copy_from_slice(point);
        self.cells[slot] = key;
        let mut found = std::mem::take(&mut self.found);
        self.collect(point, key, &mut found);
        // Arrival order (the slot's age), so that evictions always pop list fronts.
        found.sort_unstable_by_key(|&s| (s as usize + window - oldest) % window);
        let min_points = self.params.min_points;
        let mut changed = found.len() + 1 >= min_points;
        for &s in &found {
            let theirs = &mut self.adjacent[s as usize];
            theirs.push_back(slot as u32);
            changed |= theirs.len() + 1 >= min_points;
        }
        self.adjacent[slot].extend(found.iter().copied());
        self.found = found;
        self.grid.entry(key).or_default().push(slot as u32);
        self.next_seq += 1;
        self.len += 1;
        changed
    }

    /// DBSCAN over the window: clusters grow from core points taken oldest first.
    fn recluster(&mut self) {
        let min_points = self.params.min_points;
        let mut labels = std::mem::take(&mut self.labels);
        let mut stack = std::mem::take(&mut self.stack);
        labels.clear();
        labels.resize(self.adjacent.len(), UNLABELLED);
        let mut hotspots: Vec<Hotspot> = Vec::new();
        // Once every point has a cluster, nothing is left to find (this makes a window that is
        // one big cluster, e.g. a constant signal, cost one neighbour list instead of all).
        let mut unlabelled = self.len;
        for seq in self.oldest_seq()..self.next_seq {
            if unlabelled == 0 {
                break;
            }
            let start = self.slot(seq);
            if labels[start] != UNLABELLED || self.count(start) < min_points {
                continue;
            }
            let id = hotspots.len() as u32;
            let first = self.point(start);
            let mut hotspot = Hotspot {
                density: 0.0,
                min_values: first.to_vec(),
                max_values: first.to_vec(),
                points: 1,
            };
            labels[start] = id;
            unlabelled -= 1;
            stack.push(start as u32);
            while let Some(core) = stack.pop() {
                if unlabelled == 0 {
                    stack.clear();
                    break;
                }
                for &s in &self.adjacent[core as usize] {
                    let s = s as usize;
                    if labels[s] != UNLABELLED {
                        continue;
                    }
                    labels[s] = id;
                    unlabelled -= 1;
                    hotspot.points += 1;
                    for ((lo, hi), &x) in hotspot
                        .min_values
                        .iter_mut()
                        .zip(hotspot.max_values.iter_mut())
                        .zip(self.point(s))
                    {
                        *lo = lo.min(x);
                        *hi = hi.max(x);
                    }
                    if self.count(s) >= min_points {
                        stack.push(s as u32);
                    }
                }
            }
            hotspot.density = density(
                hotspot.points,
                &hotspot.min_values,
                &hotspot.max_values,
                self.params.scan_radius,
            );
            hotspots.push(hotspot);
        }
        // Stable: ties keep discovery order (arrival order of the oldest core point).
        hotspots.sort_by(|a, b| b.density.total_cmp(&a.density));
        self.hotspots = hotspots;
        self.labels = labels;
        self.stack = stack;
        self.render_json();
    }

    fn render_json(&mut self) {
        let mut out = String::with_capacity(16 + self.hotspots.len() * (40 + 40 * self.dims));
        out.push_str("{\"hotspots\":[");
        for (i, h) in self.hotspots.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"density\":");
            push_number(&mut out, h.density);
            out.push_str(",\"minValues\":");
            push_array(&mut out, &h.min_values);
            out.push_str(",\"maxValues\":");
            push_array(&mut out, &h.max_values);
            out.push('}');
        }
        out.push_str("]}");
        self.json = out;
    }
}

/// `n / Π (max_i - min_i + ε)`, in log space if the product under- or overflows; clamped to
/// `[0, f64::MAX]`.
fn density(n: usize, min: &[f64], max: &[f64], radius: f64) -> f64 {
    let extent = |(lo, hi): (&f64, &f64)| hi - lo + radius;
    let volume: f64 = min.iter().zip(max).map(extent).product();
    let d = if volume.is_normal() {
        n as f64 / volume
    } else {
        let log_volume: f64 = min.iter().zip(max).map(|e| extent(e).ln()).sum();
        ((n as f64).ln() - log_volume).exp()
    };
    if d.is_nan() {
        0.0
    } else {
        d.clamp(0.0, f64::MAX)
    }
}

fn check_point(point: &[f64], dims: usize) -> Result<()> {
    if point.len() != dims {
        return exec_err!(
            "HOTSPOTS: a point has {} numeric values but the model was built for {dims}",
            point.len()
        );
    }
    if let Some((i, v)) = point.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return exec_err!(
            "HOTSPOTS: value {v} in dimension {i} (0-based numeric column) is not a finite \
             number"
        );
    }
    Ok(())
}

fn push_number(out: &mut String, x: f64) {
    // Finite by construction (inputs are checked, density is clamped); `{:?}` is the
    // shortest representation that parses back to the same f64, always valid JSON.
    let _ = write!(out, "{x:?}");
}

fn push_array(out: &mut String, values: &[f64]) {
    out.push('[');
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_number(out, v);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny deterministic PRNG for the tests.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }
        /// Standard normal (Box–Muller).
        fn normal(&mut self) -> f64 {
            let u = 1.0 - self.unit();
            let v = self.unit();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }
    }

    fn params(window_size: usize, scan_radius: f64, min_points: usize) -> HotspotsParams {
        HotspotsParams {
            window_size,
            scan_radius,
            min_points,
        }
    }

    fn contains(h: &Hotspot, p: &[f64]) -> bool {
        p.iter()
            .enumerate()
            .all(|(i, &x)| h.min_values[i] <= x && x <= h.max_values[i])
    }

    const BLOB_A: [f64; 2] = [2.5, 7.0];
    const BLOB_B: [f64; 2] = [7.5, 3.0];

    /// 80% uniform noise over [0,10]², 10% each around two Gaussian blobs (σ = 0.2).
    fn blobs_point(rng: &mut Rng) -> [f64; 2] {
        let u = rng.unit();
        if u < 0.1 {
            [
                BLOB_A[0] + 0.2 * rng.normal(),
                BLOB_A[1] + 0.2 * rng.normal(),
            ]
        } else if u < 0.2 {
            [
                BLOB_B[0] + 0.2 * rng.normal(),
                BLOB_B[1] + 0.2 * rng.normal(),
            ]
        } else {
            [rng.uniform(0.0, 10.0), rng.uniform(0.0, 10.0)]
        }
    }

    // Parameters for the [0,10]² tests: the Developer Guide's 1000 / 0.2 / 17. Uniform noise
    // of 800..1000 points has 8..10 points per unit², i.e. about 1.0..1.3 expected neighbours
    // within 0.2, so a core point (16 neighbours) is a ~1e-13 event per point: no cluster.
    // A blob of 100 points with σ = 0.2 has ~50 neighbours per point at its centre.
    const DOCS: HotspotsParams = HotspotsParams {
        window_size: 1000,
        scan_radius: 0.2,
        min_points: 17,
    };
    /// Background density of the blob test (800 noise points on 100 unit²).
    const BACKGROUND: f64 = 8.0;

    #[test]
    fn planted_blobs_are_the_two_hotspots() {
        let mut rng = Rng(42);
        let mut model = HotspotsModel::try_new(DOCS, 2).unwrap();
        let mut checked = 0;
        for row in 0..3000 {
            let p = blobs_point(&mut rng);
            model.update(&p).unwrap();
            if row >= 999 && row % 50 == 49 {
                let hs = model.hotspots();
                assert_eq!(hs.len(), 2, "row {row}: {}", model.result_json());
                let a = hs.iter().position(|h| contains(h, &BLOB_A)).unwrap();
                let b = hs.iter().position(|h| contains(h, &BLOB_B)).unwrap();
                assert_ne!(a, b);
                for h in hs {
                    // ~100 blob points (and a few noise points next to them) in a box of
                    // about (1.0 + 0.2)²: far above the background density.
                    assert!(h.density > 4.0 * BACKGROUND, "row {row}: {h:?}");
                    assert!((60..=160).contains(&h.points), "row {row}: {h:?}");
                }
                assert!(hs[0].density >= hs[1].density);
                checked += 1;
            }
        }
        assert_eq!(checked, 41);
    }

    /// Modelled on the Developer Guide example (points uniform in [0,10]², a square hotspot
    /// of side 1 that draws 20% of the points, HOTSPOTS(.., 1000, 0.2, 17), viewer filter
    /// `density >= 40`): exactly one hotspot, covering the square, above 40.
    #[test]
    fn developer_guide_square_hotspot() {
        let mut rng = Rng(7);
        let mut model = HotspotsModel::try_new(DOCS, 2).unwrap();
        for _ in 0..2000 {
            let p = if rng.unit() < 0.2 {
                [rng.uniform(4.0, 5.0), rng.uniform(1.0, 2.0)]
            } else {
                [rng.uniform(0.0, 10.0), rng.uniform(0.0, 10.0)]
            };
            model.update(&p).unwrap();
        }
        let hs = model.hotspots();
        assert_eq!(hs.len(), 1, "{}", model.result_json());
        assert!(contains(&hs[0], &[4.5, 1.5]));
        // ~200 points in about (1 + 0.2)²: ~140 per unit².
        assert!(hs[0].density >= 40.0, "{:?}", hs[0]);
        assert!(hs[0].max_values[0] - hs[0].min_values[0] < 1.5);
    }

    #[test]
    fn uniform_noise_has_no_hotspot() {
        let mut rng = Rng(1);
        let mut model = HotspotsModel::try_new(DOCS, 2).unwrap();
        for row in 0..4000 {
            let p = [rng.uniform(0.0, 10.0), rng.uniform(0.0, 10.0)];
            let json = model.update(&p).unwrap();
            assert_eq!(json, r#"{"hotspots":[]}"#, "row {row}");
        }
        // 3-D: 1000 points in [0,10]³ (1 per unit³), ε = 0.5: ~0.52 expected neighbours, so
        // with minPts 10 a core point is a ~5e-9 event per point.
        let mut model = HotspotsModel::try_new(params(1000, 0.5, 10), 3).unwrap();
        for row in 0..3000 {
            let p = [
                rng.uniform(0.0, 10.0),
                rng.uniform(0.0, 10.0),
                rng.uniform(0.0, 10.0),
            ];
            assert_eq!(model.update(&p).unwrap(), r#"{"hotspots":[]}"#, "row {row}");
        }
    }

    #[test]
    fn hotspot_disappears_after_a_window_of_noise() {
        let mut rng = Rng(3);
        let mut model = HotspotsModel::try_new(DOCS, 2).unwrap();
        for _ in 0..1500 {
            let p = blobs_point(&mut rng);
            model.update(&p).unwrap();
        }
        assert_eq!(model.hotspots().len(), 2);
        // Blob A stops; blob B and noise go on.
        let only_b = |rng: &mut Rng| loop {
            let p = blobs_point(rng);
            if (p[0] - BLOB_A[0]).hypot(p[1] - BLOB_A[1]) > 1.5 {
                return p;
            }
        };
        let mut gone_at = None;
        for row in 0..DOCS.window_size {
            let p = only_b(&mut rng);
            model.update(&p).unwrap();
            let has_a = model.hotspots().iter().any(|h| contains(h, &BLOB_A));
            if !has_a && gone_at.is_none() {
                gone_at = Some(row);
            }
            if gone_at.is_some() {
                assert!(!has_a, "blob A came back at row {row}");
            }
        }
        // It fades once fewer than ~minPts of its points are left close together (about a
        // third of the blob: after ~2/3 of a window), and certainly once all are evicted.
        let gone_at = gone_at.expect("blob A's hotspot never disappeared");
        println!("blob A's hotspot gone after {gone_at} rows");
        assert!(gone_at > 400, "blob A gone too early, after {gone_at} rows");
        let hs = model.hotspots();
        assert_eq!(hs.len(), 1, "{}", model.result_json());
        assert!(contains(&hs[0], &BLOB_B));
    }

    #[test]
    fn exact_results_in_one_dimension() {
        let mut model = HotspotsModel::try_new(params(100, 1.0, 3), 1).unwrap();
        assert_eq!(model.result_json(), r#"{"hotspots":[]}"#);
        assert_eq!(model.update(&[0.0]).unwrap(), r#"{"hotspots":[]}"#);
        assert_eq!(model.update(&[2.0]).unwrap(), r#"{"hotspots":[]}"#);
        // 1.0 is core (0, 1, 2 within 1); 0 and 2 are border points: 3 / (2 + 1).
        assert_eq!(
            model.update(&[1.0]).unwrap(),
            r#"{"hotspots":[{"density":1.0,"minValues":[0.0],"maxValues":[2.0]}]}"#
        );
        // A denser group: 4 / (1.5 + 1) = 1.6 comes first.
        for x in [8.0, 8.5, 9.0] {
            model.update(&[x]).unwrap();
        }
        assert_eq!(
            model.update(&[9.5]).unwrap(),
            r#"{"hotspots":[{"density":1.6,"minValues":[8.0],"maxValues":[9.5]},{"density":1.0,"minValues":[0.0],"maxValues":[2.0]}]}"#
        );
        // Far noise changes nothing.
        assert_eq!(
            model.update(&[-50.0]).unwrap(),
            r#"{"hotspots":[{"density":1.6,"minValues":[8.0],"maxValues":[9.5]},{"density":1.0,"minValues":[0.0],"maxValues":[2.0]}]}"#
        );
        // 3.0 makes 2.0 core (1, 2, 3) and joins the first group: 4 / (3 + 1) = 1.0.
        assert_eq!(
            model.update(&[3.0]).unwrap(),
            r#"{"hotspots":[{"density":1.6,"minValues":[8.0],"maxValues":[9.5]},{"density":1.0,"minValues":[0.0],"maxValues":[3.0]}]}"#
        );
        assert_eq!(model.len(), 9);
    }

    #[test]
    fn border_point_goes_to_the_older_cluster() {
        // 1-D, ε = 1, minPts 4: two groups of four points, every point core.
        let mut model = HotspotsModel::try_new(params(100, 1.0, 4), 1).unwrap();
        for x in [0.0, 0.25, 0.5, 1.0, 2.5, 3.0, 3.25, 3.5] {
            model.update(&[x]).unwrap();
        }
        // L: 0..1 (4 points, all core), R: 2.5..3.5 (4 points, all core).
        assert_eq!(
            model.result_json(),
            r#"{"hotspots":[{"density":2.0,"minValues":[0.0],"maxValues":[1.0]},{"density":2.0,"minValues":[2.5],"maxValues":[3.5]}]}"#
        );
        // 1.75: neighbours 1.0 and 2.5 only (3 with itself) -> a border point of both groups;
        // it joins L, whose oldest core point is older: 5 / (1.75 + 1).
        assert_eq!(
            model.update(&[1.75]).unwrap(),
            r#"{"hotspots":[{"density":2.0,"minValues":[2.5],"maxValues":[3.5]},{"density":1.8181818181818181,"minValues":[0.0],"maxValues":[1.75]}]}"#
        );
    }

    #[test]
    fn three_dimensions_and_degenerate_hotspots() {
        let mut model = HotspotsModel::try_new(params(100, 0.5, 5), 3).unwrap();
        // Five identical points: size ε³ = 0.125, density 5 / 0.125 = 40 (the maximum for 5).
        for _ in 0..5 {
            model.update(&[1.0, -2.0, 3.0]).unwrap();
        }
        assert_eq!(
            model.result_json(),
            r#"{"hotspots":[{"density":40.0,"minValues":[1.0,-2.0,3.0],"maxValues":[1.0,-2.0,3.0]}]}"#
        );
        // A corner of a cube 0.25 away in z: joins (distance 0.25 <= 0.5); size
        // 0.5 * 0.5 * 0.75, density 6 / 0.1875 = 32.
        model.update(&[1.0, -2.0, 3.25]).unwrap();
        assert_eq!(model.hotspots().len(), 1);
        assert_eq!(model.hotspots()[0].density, 32.0);
        assert_eq!(model.hotspots()[0].max_values, vec![1.0, -2.0, 3.25]);
        // Just beyond ε of the nearest point, in the next grid cell: not a neighbour.
        model.update(&[1.0, -2.0, 3.75 + 1e-9]).unwrap();
        assert_eq!(model.hotspots()[0].points, 6);
    }

    #[test]
    fn more_dimensions_than_the_grid() {
        // 5-D: the grid indexes 3 dimensions, the last two still count in the distance.
        let mut model = HotspotsModel::try_new(params(100, 1.0, 3), 5).unwrap();
        model.update(&[0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        model.update(&[0.0, 0.0, 0.0, 0.0, 5.0]).unwrap();
        model.update(&[0.0, 0.0, 0.0, 5.0, 0.0]).unwrap();
        assert!(model.hotspots().is_empty());
        model.update(&[0.0, 0.0, 0.0, 0.6, 0.0]).unwrap();
        model.update(&[0.0, 0.0, 0.0, 0.0, 0.6]).unwrap();
        // All five points share one grid cell. {origin, 0.6 e4, 0.6 e5} are pairwise within 1
        // (the last two are 0.85 apart): all three core; 3 / (1 * 1 * 1 * 1.6 * 1.6).
        assert_eq!(
            model.result_json(),
            r#"{"hotspots":[{"density":1.1718749999999998,"minValues":[0.0,0.0,0.0,0.0,0.0],"maxValues":[0.0,0.0,0.0,0.6,0.6]}]}"#
        );
    }

    #[test]
    fn parameter_errors_name_function_parameter_range_and_value() {
        let err = |p: HotspotsParams| p.validate().unwrap_err().to_string();
        assert_eq!(
            err(params(99, 0.2, 17)),
            "Error during planning: HOTSPOTS: windowSize must be between 100 and 1000 \
             inclusive, got 99"
        );
        assert_eq!(
            err(params(1001, 0.2, 17)),
            "Error during planning: HOTSPOTS: windowSize must be between 100 and 1000 \
             inclusive, got 1001"
        );
        for (r, shown) in [
            (0.0, "0"),
            (-1.5, "-1.5"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(
                err(params(100, r, 17)),
                format!(
                    "Error during planning: HOTSPOTS: scanRadius must be a finite number \
                     greater than 0, got {shown}"
                )
            );
        }
        assert_eq!(
            err(params(100, 0.2, 1)),
            "Error during planning: HOTSPOTS: minimumNumberOfPointsInAHotspot must be between \
             2 and windowSize (100) inclusive, got 1"
        );
        assert_eq!(
            err(params(100, 0.2, 101)),
            "Error during planning: HOTSPOTS: minimumNumberOfPointsInAHotspot must be between \
             2 and windowSize (100) inclusive, got 101"
        );
        // The edges are accepted.
        params(100, f64::MIN_POSITIVE, 2).validate().unwrap();
        params(1000, 1e300, 1000).validate().unwrap();
        // try_new validates too, and checks the dimensions.
        assert!(HotspotsModel::try_new(params(99, 0.2, 17), 2).is_err());
        for dims in [0, MAX_DIMENSIONS + 1] {
            assert_eq!(
                HotspotsModel::try_new(DOCS, dims).unwrap_err().to_string(),
                format!(
                    "Error during planning: HOTSPOTS: the input must have between 1 and 1000 \
                     numeric columns, got {dims}"
                )
            );
        }
        HotspotsModel::try_new(DOCS, MAX_DIMENSIONS).unwrap();
    }

    #[test]
    fn bad_points_are_errors_and_leave_the_model_unchanged() {
        let mut model = HotspotsModel::try_new(params(100, 1.0, 2), 2).unwrap();
        model.update(&[0.0, 0.0]).unwrap();
        let before = model.update(&[0.5, 0.0]).unwrap().to_owned();
        assert_eq!(
            model.update(&[1.0, f64::NAN]).unwrap_err().to_string(),
            "Execution error: HOTSPOTS: value NaN in dimension 1 (0-based numeric column) is \
             not a finite number"
        );
        assert_eq!(
            model
                .update(&[f64::NEG_INFINITY, 0.0])
                .unwrap_err()
                .to_string(),
            "Execution error: HOTSPOTS: value -inf in dimension 0 (0-based numeric column) is \
             not a finite number"
        );
        assert_eq!(
            model.update(&[1.0]).unwrap_err().to_string(),
            "Execution error: HOTSPOTS: a point has 1 numeric values but the model was built \
             for 2"
        );
        assert_eq!(model.len(), 2);
        assert_eq!(model.result_json(), before);
    }

    #[test]
    fn extreme_coordinates_and_radii() {
        // Coordinates whose cells saturate i64, and a radius whose square overflows.
        let mut model = HotspotsModel::try_new(params(100, 1e-300, 2), 1).unwrap();
        model.update(&[1e300]).unwrap();
        model.update(&[1e300]).unwrap();
        model.update(&[-1e300]).unwrap();
        assert_eq!(model.hotspots().len(), 1);
        assert_eq!(model.hotspots()[0].min_values, vec![1e300]);
        // n / ε = 2e300.
        assert_eq!(model.hotspots()[0].density, 2.0 / 1e-300);
        let mut model = HotspotsModel::try_new(params(100, 1e200, 2), 2).unwrap();
        model.update(&[-1e300, 0.0]).unwrap();
        model.update(&[1e300, 0.0]).unwrap();
        assert!(model.hotspots().is_empty(), "{}", model.result_json());
        model.update(&[1e300, 1e199]).unwrap();
        assert_eq!(model.hotspots().len(), 1);
        // Subnormal radius in 30 dimensions: the product underflows, the density saturates.
        let mut model = HotspotsModel::try_new(params(100, 5e-324, 2), 30).unwrap();
        model.update(&[0.5; 30]).unwrap();
        assert_eq!(
            model.update(&[0.5; 30]).unwrap(),
            format!(
                r#"{{"hotspots":[{{"density":{:?},"minValues":[{}],"maxValues":[{}]}}]}}"#,
                f64::MAX,
                vec!["0.5"; 30].join(","),
                vec!["0.5"; 30].join(",")
            )
        );
    }

    /// Reference: plain O(n²) DBSCAN over the window (oldest first), same density and order.
    fn reference(points: &[Vec<f64>], p: &HotspotsParams) -> Vec<Hotspot> {
        let n = points.len();
        // The model's distance test (scaled by 1/ε, summed in dimension order), brute force.
        let inv = 1.0 / p.scan_radius;
        let within = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| ((x - y) * inv) * ((x - y) * inv))
                .sum::<f64>()
                <= 1.0
        };
        let mut neigh: Vec<Vec<usize>> = vec![Vec::new(); n];
        for i in 0..n {
            for j in i..n {
                if within(&points[i], &points[j]) {
                    neigh[i].push(j);
                    if i != j {
                        neigh[j].push(i);
                    }
                }
            }
        }
        let core: Vec<bool> = neigh.iter().map(|v| v.len() >= p.min_points).collect();
        let mut label = vec![usize::MAX; n];
        let mut out = Vec::new();
        for i in 0..n {
            if !core[i] || label[i] != usize::MAX {
                continue;
            }
            let id = out.len();
            let mut members = vec![i];
            label[i] = id;
            let mut stack = vec![i];
            while let Some(c) = stack.pop() {
                for &j in &neigh[c] {
                    if label[j] == usize::MAX {
                        label[j] = id;
                        members.push(j);
                        if core[j] {
                            stack.push(j);
                        }
                    }
                }
            }
            let d = points[0].len();
            let min: Vec<f64> = (0..d)
                .map(|k| {
                    members
                        .iter()
                        .map(|&m| points[m][k])
                        .fold(f64::MAX, f64::min)
                })
                .collect();
            let max: Vec<f64> = (0..d)
                .map(|k| {
                    members
                        .iter()
                        .map(|&m| points[m][k])
                        .fold(f64::MIN, f64::max)
                })
                .collect();
            out.push(Hotspot {
                density: density(members.len(), &min, &max, p.scan_radius),
                min_values: min,
                max_values: max,
                points: members.len(),
            });
        }
        out.sort_by(|a, b| b.density.total_cmp(&a.density));
        out
    }

    #[test]
    fn incremental_model_matches_plain_dbscan() {
        let mut rng = Rng(2024);
        for (dims, radius, min_points) in [(1, 0.05, 4), (2, 0.4, 5), (3, 0.8, 4), (5, 1.5, 3)] {
            let p = params(100, radius, min_points);
            let mut model = HotspotsModel::try_new(p, dims).unwrap();
            let mut window: Vec<Vec<f64>> = Vec::new();
            // Drifting clusters, shared border points and noise, on a coarse lattice so that
            // ties and duplicates occur.
            let centres: Vec<Vec<f64>> = (0..3)
                .map(|_| (0..dims).map(|_| rng.uniform(0.0, 5.0)).collect())
                .collect();
            let mut changed_rows = 0;
            let mut last = String::new();
            for row in 0..600 {
                let c = (row / 200) % 3;
                let point: Vec<f64> = if rng.unit() < 0.6 {
                    centres[c]
                        .iter()
                        .map(|x| x + radius * 0.8 / (dims as f64).sqrt() * rng.normal())
                        .collect()
                } else {
                    (0..dims).map(|_| rng.uniform(0.0, 5.0)).collect()
                };
                let point: Vec<f64> = point.iter().map(|x| (x * 64.0).round() / 64.0).collect();
                window.push(point.clone());
                if window.len() > p.window_size {
                    window.remove(0);
                }
                let json = model.update(&point).unwrap().to_owned();
                assert_eq!(
                    model.hotspots(),
                    reference(&window, &p).as_slice(),
                    "dims {dims}, row {row}"
                );
                if json != last {
                    changed_rows += 1;
                }
                last = json;
            }
            // The test must exercise clusters appearing, changing and vanishing.
            assert!(changed_rows > 100, "dims {dims}: {changed_rows}");
        }
    }

    #[test]
    fn checkpoint_round_trip_gives_identical_outputs() {
        let mut rng = Rng(99);
        let mut model = HotspotsModel::try_new(DOCS, 2).unwrap();
        for _ in 0..1700 {
            let p = blobs_point(&mut rng);
            model.update(&p).unwrap();
        }
        let bytes = serde_json::to_string(&model).unwrap();
        let mut restored: HotspotsModel = serde_json::from_str(&bytes).unwrap();
        assert_eq!(restored.result_json(), model.result_json());
        assert_eq!(restored.len(), 1000);
        for row in 0..1200 {
            let p = blobs_point(&mut rng);
            assert_eq!(
                restored.update(&p).unwrap(),
                model.update(&p).unwrap(),
                "row {row}"
            );
        }
        // A partly filled window too.
        let mut small = HotspotsModel::try_new(params(100, 1.0, 3), 1).unwrap();
        for x in [0.0, 1.0, 2.0] {
            small.update(&[x]).unwrap();
        }
        let cp: HotspotsCheckpoint = small.clone().into();
        assert_eq!(
            cp.points,
            vec![0.0f64.to_bits(), 1.0f64.to_bits(), 2.0f64.to_bits()]
        );
        assert_eq!(cp.seen, 3);
        let mut restored = HotspotsModel::try_from(cp).unwrap();
        assert_eq!(
            restored.update(&[3.0]).unwrap(),
            small.update(&[3.0]).unwrap()
        );
        // A tampered checkpoint is rejected with the parameter error.
        let bad = bytes.replace("\"window_size\":1000", "\"window_size\":99");
        assert_ne!(bad, bytes);
        let err = serde_json::from_str::<HotspotsModel>(&bad).unwrap_err();
        assert!(err.to_string().contains("windowSize"), "{err}");
    }
}

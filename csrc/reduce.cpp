// Reductions over a set of axes: sum, mean, max, min, logsumexp; argmax/argmin over one axis
// or the flattened array.
//
// Layout. The kept dimensions form a StridedLoop over (output, input); the reduced dimensions
// another (sorted by stride, negative strides flipped, collapsed), walked from each output's
// input pointer. For each run of outputs the kernel picks:
//  - row mode: each output reduces its own lines (unit stride for inner-axis reductions), in
//    multi-accumulator vectorised loops;
//  - column mode, when the outputs are closer together in memory than the reduced elements
//    (axis-0 reductions of a C-contiguous array): a row vector of accumulators is updated by
//    whole input rows, vectorised across the columns.
// Threads split the outputs, or, for few outputs (a full reduction), the reduced range, with
// per-chunk partial states combined afterwards.
//
// Accuracy: sums accumulate in double, in 32 independent lanes over blocks of 4096 elements
// (unit-stride float32: 128 float lanes of at most 32 additions each, summed in double) whose
// block sums are added with Neumaier compensation; column sums flush their per-row
// accumulators every 128 rows. logsumexp is one pass over memory: per block of 1024
// elements (or 16 rows in column mode) the block max rescales the running sum only when the
// running max grows, then exp(x - max) is summed.
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <type_traits>

#include "common.h"
#include "kernels/table.h"
#include "strided.h"

namespace gf {
namespace {

constexpr index_t kSumBlock = 4096;
constexpr index_t kLseBlock = 1024;

// The row, lockstep and column kernels are in kernels/reduce.h (compiled per instruction-set
// level, called through kern<T>()).
// ---- four unit-stride lines at once ------------------------------------------------------------
// One core streams memory faster from several places at once than from one (more prefetches in
// flight: 7.8 -> 11 GB/s for four streams on the 2-core AVX-512 machine), so long contiguous
// reductions walk four lines in lockstep: the four quarters of one range (a full reduction), or
// four rows (a reduction over the last axis). Two vectors of lanes per line; float32 sums take
// blocks of kSumBlock4 so that no float lane adds more than 32 elements, as sum_block_f32 (kernels/reduce.h).
constexpr index_t kSumBlock4 = 1024;
constexpr index_t kLockstepMin = 1 << 14;  // elements per quarter for a range to be split
// Full reductions (fewer outputs than this) split the reduced range into at most kMaxParts
// parts of at least kGrain elements, whatever the thread count.
constexpr index_t kFewOutputs = 8;
constexpr index_t kMaxParts = 16;

template <class T> T lse_finish(T m, double s) {
  if (!is_finite(m)) return m;  // NaN, +inf, or -inf (all -inf / empty)
  return T(double(m) + math::log(s));
}

// ---- the ops -----------------------------------------------------------------------------------
template <class T, bool Mean>
struct SumOp {
  struct State {
    double s = 0, c = 0;
  };
  static void add(State& st, double v) {  // Neumaier
    double t = st.s + v;
    // Once the sum is infinite (or NaN) it stays so; the correction would turn it into NaN.
    if (!is_finite(t)) {
      st.s = t;
      return;
    }
    if (std::abs(st.s) >= std::abs(v)) st.c += (st.s - t) + v;
    else st.c += (v - t) + st.s;
    st.s = t;
  }
  static void run(State& st, const T* p, index_t n, index_t s) {
    for (index_t b = 0; b < n; b += kSumBlock)
      add(st, kern<T>().sum_line(p + b * s, std::min(kSumBlock, n - b), s));
  }
  static void run4(State* st, const T* const* p, index_t n) {
    for (index_t b = 0; b < n; b += kSumBlock4) {
      const T* q[kStreams] = {p[0] + b, p[1] + b, p[2] + b, p[3] + b};
      double sums[kStreams];
      kern<T>().sum_x4(q, std::min(kSumBlock4, n - b), sums);
      for (int k = 0; k < kStreams; ++k) add(st[k], sums[k]);
    }
  }
  static void combine(State& a, const State& b) {
    add(a, b.s);
    add(a, b.c);
  }
  static T finish(const State& st, index_t count) {
    double v = st.s + st.c;
    return Mean ? T(v / double(count)) : T(v);
  }
  static constexpr index_t kColBlock = 1024;
  struct Cols {
    std::vector<double> acc, tot;
    index_t rows = 0;
    void init(index_t W) {
      acc.assign(W, 0.0);
      tot.assign(W, 0.0);
      rows = 0;
    }
  };
  static void col_rows(Cols& c, const T* const* rows, int nr, index_t W, index_t cs) {
    kern<T>().sum_cols(c.acc.data(), rows, nr, W, cs);
    c.rows += nr;
    if (c.rows >= 128) {
      for (index_t j = 0; j < W; ++j) c.tot[j] += c.acc[j], c.acc[j] = 0;
      c.rows = 0;
    }
  }
  static void col_finish(Cols& c, T* out, index_t os, index_t W, index_t count) {
    for (index_t j = 0; j < W; ++j) {
      double v = c.tot[j] + c.acc[j];
      out[j * os] = Mean ? T(v / double(count)) : T(v);
    }
  }
};

template <class T, bool Max>
struct ExtremeOp {
  struct State {
    T m = Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  };
  static void run(State& st, const T* p, index_t n, index_t s) {
    T v = (Max ? kern<T>().max_line : kern<T>().min_line)(p, n, s);
    st.m = Max ? nanmax(st.m, v) : nanmin(st.m, v);
  }
  static void run4(State* st, const T* const* p, index_t n) {
    T m[kStreams];
    (Max ? kern<T>().max_x4 : kern<T>().min_x4)(p, n, m);
    for (int k = 0; k < kStreams; ++k) st[k].m = Max ? nanmax(st[k].m, m[k]) : nanmin(st[k].m, m[k]);
  }
  static void combine(State& a, const State& b) { a.m = Max ? nanmax(a.m, b.m) : nanmin(a.m, b.m); }
  static T finish(const State& st, index_t) { return st.m; }
  static constexpr index_t kColBlock = 2048;
  struct Cols {
    std::vector<T> acc;
    void init(index_t W) { acc.assign(W, State().m); }
  };
  static void col_rows(Cols& c, const T* const* rows, int nr, index_t W, index_t cs) {
    (Max ? kern<T>().max_cols : kern<T>().min_cols)(c.acc.data(), rows, nr, W, cs);
  }
  static void col_finish(Cols& c, T* out, index_t os, index_t W, index_t) {
    for (index_t j = 0; j < W; ++j) out[j * os] = c.acc[j];
  }
};

template <class T>
struct LseOp {
  struct State {
    T m = -std::numeric_limits<T>::infinity();
    double s = 0;
  };
  // Folds a block whose max is bm into the running max; true if exp(x - st.m) must be summed.
  static bool update(State& st, T bm) {
    if (bm != bm || st.m != st.m) {
      st.m = std::numeric_limits<T>::quiet_NaN();
      return false;
    }
    if (st.m == std::numeric_limits<T>::infinity()) return false;
    if (bm == std::numeric_limits<T>::infinity()) {
      st.m = bm;
      return false;
    }
    if (bm == -std::numeric_limits<T>::infinity()) return false;
    if (bm > st.m) {
      st.s = (st.m == -std::numeric_limits<T>::infinity())
                 ? 0.0
                 : st.s * math::exp(double(st.m) - double(bm));
      st.m = bm;
    }
    return true;
  }
  static void run(State& st, const T* p, index_t n, index_t s) {
    for (index_t b = 0; b < n; b += kLseBlock) {
      index_t len = std::min(kLseBlock, n - b);
      const T* q = p + b * s;
      if (update(st, kern<T>().max_line(q, len, s))) st.s += kern<T>().sumexp_line(q, len, s, st.m);
    }
  }
  static void run4(State* st, const T* const* p, index_t n) {  // exp-bound: no gain from lockstep
    for (int k = 0; k < kStreams; ++k) run(st[k], p[k], n, 1);
  }
  static void combine(State& a, const State& b) {
    if (b.m == -std::numeric_limits<T>::infinity() && b.m == b.m) return;
    if (!is_finite(b.m) || !is_finite(a.m)) {  // NaN, +inf, or a = -inf
      if (a.m != a.m || b.m != b.m) a.m = std::numeric_limits<T>::quiet_NaN();
      else if (a.m == -std::numeric_limits<T>::infinity()) a = b;
      else a.m = std::numeric_limits<T>::infinity();
      return;
    }
    T M = std::max(a.m, b.m);
    a.s = a.s * math::exp(double(a.m) - double(M)) + b.s * math::exp(double(b.m) - double(M));
    a.m = M;
  }
  static T finish(const State& st, index_t) { return lse_finish(st.m, st.s); }
  static constexpr index_t kColBlock = 256;
  struct Cols {
    std::vector<T> m, bm, sh;
    std::vector<double> s;
    void init(index_t W) {
      m.assign(W, -std::numeric_limits<T>::infinity());
      bm.resize(W);
      sh.resize(W);
      s.assign(W, 0.0);
    }
  };
  static void col_rows(Cols& c, const T* const* rows, int nr, index_t W, index_t cs) {
    kern<T>().lse_cols(c.m.data(), c.s.data(), c.bm.data(), c.sh.data(), rows, nr, W, cs);
  }
  static void col_finish(Cols& c, T* out, index_t os, index_t W, index_t) {
    for (index_t j = 0; j < W; ++j) out[j * os] = lse_finish(c.m[j], c.s[j]);
  }
};

// ---- argument handling ---------------------------------------------------------------------------
// axes: None (all), an int, or a sequence of ints -> a mask over the dimensions.
std::vector<bool> parse_axes(const char* op, const py::object& axes, int ndim) {
  std::vector<bool> mask(ndim, false);
  if (axes.is_none()) {
    mask.assign(ndim, true);
    return mask;
  }
  std::vector<index_t> list;
  if (py::isinstance<py::int_>(axes)) {
    list.push_back(axes.cast<index_t>());
  } else {
    for (py::handle h : axes) {
      if (!py::isinstance<py::int_>(h) && !py::hasattr(h, "__index__"))
        throw py::type_error(std::string(op) + ": axes must be ints, got " +
                             py::repr(axes).cast<std::string>());
      list.push_back(py::int_(py::reinterpret_borrow<py::object>(h)).cast<index_t>());
    }
  }
  for (index_t a : list) {
    int d = normalize_axis(a, ndim, op);
    if (mask[d])
      throw py::value_error(std::string(op) + ": duplicate value in axes " +
                            py::repr(axes).cast<std::string>());
    mask[d] = true;
  }
  return mask;
}

std::vector<py::ssize_t> out_shape(const py::array& x, const std::vector<bool>& mask, bool keepdims) {
  std::vector<py::ssize_t> s;
  for (int d = 0; d < int(x.ndim()); ++d) {
    if (!mask[d]) s.push_back(x.shape(d));
    else if (keepdims) s.push_back(1);
  }
  return s;
}

// The reduced dimensions as a 1-operand loop of byte offsets from an output's input pointer
// (sorted by |stride|, negative strides flipped: `delta` is the byte offset that flip adds).
StridedLoop<1> reduced_loop(const py::array& x, const std::vector<bool>& mask, index_t& delta) {
  std::vector<std::pair<index_t, index_t>> dims;  // (stride, shape)
  delta = 0;
  for (int d = 0; d < int(x.ndim()); ++d) {
    if (!mask[d]) continue;
    index_t st = x.strides(d), sh = x.shape(d);
    if (st < 0 && sh > 0) {
      delta += st * (sh - 1);
      st = -st;
    }
    dims.emplace_back(st, sh);
  }
  std::stable_sort(dims.begin(), dims.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  StridedLoop<1> R;
  R.ndim = int(dims.size());
  for (int i = 0; i < R.ndim; ++i) {
    R.strides[0][i] = dims[i].first;
    R.shape[i] = dims[i].second;
  }
  R.data[0] = nullptr;
  R.collapse();
  return R;
}

template <class Op, class T>
void reduce_kernel(const py::array& x, const std::vector<bool>& mask, py::array& out) {
  index_t delta;
  StridedLoop<1> R = reduced_loop(x, mask, delta);
  const index_t nR = R.size();
  // kept dims: (out, in)
  std::vector<index_t> kshape, kin, kout;
  for (int d = 0; d < int(x.ndim()); ++d)
    if (!mask[d]) kshape.push_back(x.shape(d)), kin.push_back(x.strides(d));
  kout.assign(kshape.size(), 0);
  {
    index_t st = sizeof(T);
    for (int i = int(kshape.size()) - 1; i >= 0; --i) kout[i] = st, st *= kshape[i];
  }
  StridedLoop<2> K;
  K.set_shape(kshape);
  K.set_operand(0, out.mutable_data(), kout.data());
  K.set_operand(1, const_cast<void*>(x.data()), kin.data());
  K.collapse();
  const index_t nK = K.size();
  if (nK == 0) return;
  K.data[1] += delta;
  const index_t rs = R.strides[0][R.ndim - 1];  // innermost reduced stride, bytes (>= 0)

  NoGilIf nogil(nK * nR >= kNoGilMin);
  // A long contiguous range goes as four quarters in lockstep (see lockstep_x4).
  const bool unit = R.ndim == 1 && R.strides[0][0] == index_t(sizeof(T));
  auto reduce_one = [&R, unit](char* base, index_t b, index_t e, typename Op::State& st) {
    if (unit && e - b >= kStreams * kLockstepMin) {
      const index_t q = (e - b) / kStreams;
      const T* first = reinterpret_cast<const T*>(base) + b;
      const T* p[kStreams] = {first, first + q, first + 2 * q, first + 3 * q};
      typename Op::State part[kStreams];
      Op::run4(part, p, q);
      if (e - b > kStreams * q) Op::run(part[kStreams - 1], first + kStreams * q, e - b - kStreams * q, 1);
      st = part[0];
      for (int k = 1; k < kStreams; ++k) Op::combine(st, part[k]);
      return;
    }
    char* bases[1] = {base};
    R.run_range_at(bases, b, e, [&st](char* const* p, const index_t* s, index_t n) {
      Op::run(st, reinterpret_cast<const T*>(p[0]), n, s[0] / index_t(sizeof(T)));
    });
  };

  if (nK < kFewOutputs && nR >= 2 * kGrain) {
    // Few outputs: split each output's reduced range into parts (taken by the threads), combine
    // the partials in order. The parts depend on nR alone, so the result does not depend on the
    // thread count, nor on which thread ran which part.
    K.run_range(0, nK, [&](char* const* p, const index_t* s, index_t n) {
      for (index_t i = 0; i < n; ++i) {
        char* base = p[1] + i * s[1];
        const int chunks = int(std::min<index_t>(kMaxParts, nR / kGrain));
        std::vector<typename Op::State> part(chunks);
        parallel_chunks(chunks, [&](int c) {
          reduce_one(base, nR * c / chunks, nR * (c + 1) / chunks, part[c]);
        });
        for (int c = 1; c < chunks; ++c) Op::combine(part[0], part[c]);
        reinterpret_cast<T*>(p[0] + i * s[0])[0] = Op::finish(part[0], nR);
      }
    });
    return;
  }

  const index_t grain = std::max<index_t>(1, kGrain / std::max<index_t>(nR, 1));
  // Rows in lockstep (below) are grouped by their place in the kept innermost line, not in the
  // thread's share of it, so that a row's result does not depend on how the outputs were split.
  const index_t line = K.ndim > 0 ? K.shape[K.ndim - 1] : 1;
  parallel_for(nK, grain, [&](index_t b, index_t e) {
    index_t pos = b;  // flat output index of the run
    K.run_range(b, e, [&](char* const* p, const index_t* s, index_t n) {
    const index_t j0 = pos % line;  // the run's first row's place in its line
    pos += n;
    T* o = reinterpret_cast<T*>(p[0]);
    const index_t os = s[0] / index_t(sizeof(T));
    const index_t cs = s[1];
    if (line >= 2 && nR > 1 && std::abs(cs) < rs) {  // (by the line: the same for any split)
      // column mode: a row vector of accumulators, updated by whole rows
      typename Op::Cols cols;
      constexpr int kRows = 16;
      const T* rows[kRows];
      for (index_t j0 = 0; j0 < n; j0 += Op::kColBlock) {
        const index_t W = std::min(Op::kColBlock, n - j0);
        cols.init(W);
        char* bases[1] = {p[1] + j0 * cs};
        int nr = 0;
        R.run_range_at(bases, 0, nR, [&](char* const* q, const index_t* qs, index_t m) {
          for (index_t r = 0; r < m; ++r) {
            rows[nr++] = reinterpret_cast<const T*>(q[0] + r * qs[0]);
            if (nr == kRows) {
              Op::col_rows(cols, rows, nr, W, cs / index_t(sizeof(T)));
              nr = 0;
            }
          }
        });
        if (nr) Op::col_rows(cols, rows, nr, W, cs / index_t(sizeof(T)));
        Op::col_finish(cols, o + j0 * os, os, W, nR);
      }
      return;
    }
    index_t i = 0;
    if (unit && nR >= kLockstepMin / 16) {  // rows long enough: four rows in lockstep
      // The line's rows [0, grouped) go in groups of four starting at its row 0; a group that
      // straddles the run's ends is computed whole, and only the run's rows are written.
      const index_t grouped = line / kStreams * kStreams;
      const index_t end = std::min(j0 + n, grouped);
      for (index_t g = j0 / kStreams * kStreams; g < end; g += kStreams) {
        typename Op::State st[kStreams];
        const T* rows[kStreams];
        for (int k = 0; k < kStreams; ++k) rows[k] = reinterpret_cast<const T*>(p[1] + (g + k - j0) * cs);
        Op::run4(st, rows, nR);
        for (int k = 0; k < kStreams; ++k)
          if (g + k >= j0 && g + k < j0 + n) o[(g + k - j0) * os] = Op::finish(st[k], nR);
      }
      i = std::max<index_t>(0, end - j0);
    }
    for (; i < n; ++i) {
      typename Op::State st;
      reduce_one(p[1] + i * cs, 0, nR, st);
      o[i * os] = Op::finish(st, nR);
    }
    });
  });
}

enum class Kind { sum, mean, max, min, lse };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::sum: return "sum";
    case Kind::mean: return "mean";
    case Kind::max: return "max";
    case Kind::min: return "min";
    default: return "logsumexp";
  }
}

template <class T>
void dispatch_kind(Kind k, const py::array& x, const std::vector<bool>& mask, py::array& out) {
  switch (k) {
    case Kind::sum: reduce_kernel<SumOp<T, false>, T>(x, mask, out); break;
    case Kind::mean: reduce_kernel<SumOp<T, true>, T>(x, mask, out); break;
    case Kind::max: reduce_kernel<ExtremeOp<T, true>, T>(x, mask, out); break;
    case Kind::min: reduce_kernel<ExtremeOp<T, false>, T>(x, mask, out); break;
    case Kind::lse: reduce_kernel<LseOp<T>, T>(x, mask, out); break;
  }
}

py::array reduce(Kind k, const py::object& xo, const py::object& axes, bool keepdims) {
  const char* op = kind_name(k);
  py::array x = as_array(xo, op);
  DType dt = float_dtype(x, op);
  std::vector<bool> mask = parse_axes(op, axes, int(x.ndim()));
  x = aligned(x);
  index_t nR = 1;
  for (int d = 0; d < int(x.ndim()); ++d)
    if (mask[d]) nR *= x.shape(d);
  std::vector<py::ssize_t> oshape = out_shape(x, mask, keepdims);
  py::array out = dt == DType::f32 ? py::array(new_array<float>(oshape))
                                   : py::array(new_array<double>(oshape));
  if (nR == 0) {
    double fill;
    switch (k) {
      case Kind::sum: fill = 0.0; break;
      case Kind::mean: fill = std::numeric_limits<double>::quiet_NaN(); break;
      case Kind::lse: fill = -std::numeric_limits<double>::infinity(); break;
      default:
        throw py::value_error(std::string(op) + ": zero-size array to reduction operation " +
                              (k == Kind::max ? "maximum" : "minimum") +
                              " which has no identity (" + describe(x) + ", axes " +
                              py::repr(axes).cast<std::string>() + ")");
    }
    py::module_::import("numpy").attr("copyto")(out, fill);
    return out;
  }
  if (dt == DType::f32) dispatch_kind<float>(k, x, mask, out);
  else dispatch_kind<double>(k, x, mask, out);
  return out;
}

// ---- argmax / argmin -------------------------------------------------------------------------------
// First index of the extreme value of a line (first NaN if any, as numpy).
template <class T, bool Max>
index_t arg_line(const T* p, index_t n, index_t s, T& best) {
  T m = (Max ? kern<T>().max_line : kern<T>().min_line)(p, n, s);
  best = m;
  if (m != m) {
    for (index_t i = 0; i < n; ++i)
      if (p[i * s] != p[i * s]) return i;
  }
  for (index_t i = 0; i < n; ++i)
    if (p[i * s] == m) return i;
  return 0;
}

template <class T, bool Max>
void arg_kernel(const py::array& x, const py::object& axis, std::int64_t* out) {
  if (axis.is_none()) {
    // flattened, C order of the logical array
    StridedLoop<1> L;
    std::vector<index_t> shape(x.shape(), x.shape() + x.ndim());
    L.set_shape(shape);
    L.set_operand(0, x);
    L.collapse();
    const index_t n = L.size();
    NoGilIf nogil(n >= kNoGilMin);
    // (The first extreme is the same whatever the split.)
    const int nt = num_threads();
    const int chunks =
        (nt > 1 && n > kGrain) ? int(std::min<index_t>(index_t(nt) * kChunksPerThread, n / kGrain)) : 1;
    std::vector<index_t> idx(chunks);
    std::vector<T> val(chunks);
    parallel_chunks(chunks, [&](int c) {
      index_t b = n * c / chunks, e = n * (c + 1) / chunks;
      index_t bi = -1;
      T bv = T(0);
      index_t pos = b;
      L.run_range(b, e, [&](char* const* p, const index_t* s, index_t m) {
        T v;
        index_t i = arg_line<T, Max>(reinterpret_cast<const T*>(p[0]), m, s[0] / index_t(sizeof(T)), v);
        if (bi < 0 || (bv == bv && (v != v || (Max ? v > bv : v < bv)))) bi = pos + i, bv = v;
        pos += m;
      });
      idx[c] = bi;
      val[c] = bv;
    });
    index_t bi = idx[0];
    T bv = val[0];
    for (int c = 1; c < chunks; ++c) {
      T v = val[c];
      if (bv == bv && (v != v || (Max ? v > bv : v < bv))) bi = idx[c], bv = v;
    }
    out[0] = bi;
    return;
  }
  // along one axis: kept dims loop over (out, in)
  int ax = normalize_axis(axis.cast<index_t>(), int(x.ndim()), Max ? "argmax" : "argmin");
  std::vector<index_t> kshape, kin, kout;
  for (int d = 0; d < int(x.ndim()); ++d)
    if (d != ax) kshape.push_back(x.shape(d)), kin.push_back(x.strides(d));
  kout.assign(kshape.size(), 0);
  index_t st = sizeof(std::int64_t);
  for (int i = int(kshape.size()) - 1; i >= 0; --i) kout[i] = st, st *= kshape[i];
  StridedLoop<2> K;
  K.set_shape(kshape);
  K.set_operand(0, out, kout.data());
  K.set_operand(1, const_cast<void*>(x.data()), kin.data());
  K.collapse();
  const index_t n = x.shape(ax), as = x.strides(ax) / index_t(sizeof(T));
  NoGilIf nogil(index_t(x.size()) >= kNoGilMin);
  K.for_each(std::max<index_t>(1, kGrain / n), [&](char* const* p, const index_t* s, index_t m) {
    for (index_t i = 0; i < m; ++i) {
      T v;
      reinterpret_cast<std::int64_t*>(p[0] + i * s[0])[0] =
          arg_line<T, Max>(reinterpret_cast<const T*>(p[1] + i * s[1]), n, as, v);
    }
  });
}

template <bool Max>
py::array argext(const py::object& xo, const py::object& axis, bool keepdims) {
  const char* op = Max ? "argmax" : "argmin";
  py::array x = as_array(xo, op);
  DType dt = float_dtype(x, op);
  x = aligned(x);
  std::vector<py::ssize_t> oshape;
  index_t len;
  if (axis.is_none()) {
    if (keepdims) oshape.assign(x.ndim(), 1);
    len = x.size();
  } else {
    int ax = normalize_axis(axis.cast<index_t>(), int(x.ndim()), op);
    for (int d = 0; d < int(x.ndim()); ++d)
      if (d != ax) oshape.push_back(x.shape(d));
      else if (keepdims) oshape.push_back(1);
    len = x.shape(ax);
  }
  if (len == 0)
    throw py::value_error(std::string(op) + ": attempt to get " + op +
                          " of an empty sequence (" + describe(x) + ")");
  py::array_t<std::int64_t> out(oshape);
  if (out.size() == 0) return out;
  if (dt == DType::f32) arg_kernel<float, Max>(x, axis, out.mutable_data());
  else arg_kernel<double, Max>(x, axis, out.mutable_data());
  return out;
}

}  // namespace

// ---- relu_backward_sum: the ReLU's backward and the bias gradient in one pass -----------------
// gx = relu_backward(y, g) (the dispatched relu_bwd) for rows of width W, written 16 rows at a
// time, each block summed into the column accumulators (the dispatched sum_cols) while it is in
// cache: the same blocks, pairings and flushes as the column mode of sum over the leading axes,
// so the sums are bitwise that kernel's.
template <class T>
void relu_backward_sum_cols(const T* y, const T* g, T* gx, T* gb, index_t R, index_t W, index_t j0,
                            index_t j1) {
  using Op = SumOp<T, false>;
  constexpr int kRows = 16;
  typename Op::Cols cols;
  const T* rows[kRows];
  for (index_t b = j0; b < j1; b += Op::kColBlock) {
    const index_t w = std::min(Op::kColBlock, j1 - b);
    cols.init(w);
    for (index_t r0 = 0; r0 < R; r0 += kRows) {
      const int nr = int(std::min<index_t>(kRows, R - r0));
      for (int r = 0; r < nr; ++r) {
        const index_t off = (r0 + r) * W + b;
        kern<T>().relu_bwd(y + off, g + off, gx + off, w, {});
        rows[r] = gx + off;
      }
      Op::col_rows(cols, rows, nr, w, 1);
    }
    Op::col_finish(cols, gb + b, 1, w, R);
  }
}

py::tuple relu_backward_sum(const py::array& y, const py::array& g) {
  const char* op = "relu_backward_sum";
  DType dt = same_float_dtype(op, {&y, &g});
  bool same = y.ndim() == g.ndim() && y.ndim() >= 2;
  for (py::ssize_t d = 0; same && d < y.ndim(); ++d) same = y.shape(d) == g.shape(d);
  if (!same)
    throw py::value_error(std::string(op) + ": y and g need one shape of at least 2 dimensions, got y: " +
                          describe(y) + " and g: " + describe(g));
  if (!(y.flags() & py::array::c_style) || !(g.flags() & py::array::c_style))
    throw py::value_error(std::string(op) + ": y and g must be C-contiguous, got y: " + describe(y) +
                          " and g: " + describe(g));
  std::vector<py::ssize_t> shape(y.shape(), y.shape() + y.ndim());
  const index_t W = shape.back(), R = index_t(y.size()) / std::max<index_t>(W, 1);
  const int nt = num_threads();
  auto run = [&](auto zero) -> py::tuple {
    using T = decltype(zero);
    py::array_t<T> gx = new_array<T>(shape);
    py::array_t<T> gb = new_array<T>({py::ssize_t(W)});
    const T* yp = static_cast<const T*>(y.data());
    const T* gp = static_cast<const T*>(g.data());
    T* xp = gx.mutable_data();
    T* bp = gb.mutable_data();
    if (R == 0) {
      std::fill(bp, bp + W, T(0));
      return py::make_tuple(gx, gb);
    }
    // The sum kernel takes its column mode for R > 1 rows and enough columns to give every
    // thread some; otherwise (few columns, one row) the sum itself runs on gx.
    if (R > 1 && W >= 4 * index_t(nt)) {
      {
        NoGilIf nogil(R * W >= kNoGilMin);
        parallel_for(W, std::max<index_t>(1, kGrain / R),
                     [&](index_t j0, index_t j1) { relu_backward_sum_cols<T>(yp, gp, xp, bp, R, W, j0, j1); });
      }
      return py::make_tuple(gx, gb);
    }
    {
      NoGilIf nogil(R * W >= kNoGilMin);
      parallel_for(R * W, kGrain, [&](index_t b, index_t e) { kern<T>().relu_bwd(yp + b, gp + b, xp + b, e - b, {}); });
    }
    std::vector<bool> mask(shape.size(), true);
    mask.back() = false;
    py::array out = gb;
    reduce_kernel<SumOp<T, false>, T>(gx, mask, out);
    return py::make_tuple(gx, gb);
  };
  return dt == DType::f32 ? run(float(0)) : run(double(0));
}

void bind_reduce(py::module_& m) {
  m.def("relu_backward_sum", &relu_backward_sum, py::arg("y"), py::arg("g"),
        "(relu_backward(y, g), its sum over all but the last axis) in one pass: the gradient "
        "through a ReLU with output y and that of the bias before it. y and g: one shape, "
        "C-contiguous, ndim >= 2.");
  const char* doc =
      " over `axes` (a tuple of ints, negative allowed; an int; or None for all; () reduces "
      "nothing), float32/float64, keeping size-1 dims if keepdims.";
  m.def("sum", [](py::object x, py::object axes, bool keepdims) { return reduce(Kind::sum, x, axes, keepdims); },
        py::arg("x"), py::arg("axes") = py::none(), py::arg("keepdims") = false,
        (std::string("Sum") + doc + " Empty: 0.").c_str());
  m.def("mean", [](py::object x, py::object axes, bool keepdims) { return reduce(Kind::mean, x, axes, keepdims); },
        py::arg("x"), py::arg("axes") = py::none(), py::arg("keepdims") = false,
        (std::string("Mean") + doc + " Empty: nan.").c_str());
  m.def("max", [](py::object x, py::object axes, bool keepdims) { return reduce(Kind::max, x, axes, keepdims); },
        py::arg("x"), py::arg("axes") = py::none(), py::arg("keepdims") = false,
        (std::string("Max (NaN propagates)") + doc + " Empty: ValueError.").c_str());
  m.def("min", [](py::object x, py::object axes, bool keepdims) { return reduce(Kind::min, x, axes, keepdims); },
        py::arg("x"), py::arg("axes") = py::none(), py::arg("keepdims") = false,
        (std::string("Min (NaN propagates)") + doc + " Empty: ValueError.").c_str());
  m.def("logsumexp", [](py::object x, py::object axes, bool keepdims) { return reduce(Kind::lse, x, axes, keepdims); },
        py::arg("x"), py::arg("axes") = py::none(), py::arg("keepdims") = false,
        (std::string("log(sum(exp(x))), max-shifted, one pass") + doc +
         " All -inf or empty: -inf; any +inf: +inf; any NaN: NaN.").c_str());
  m.def("argmax", &argext<true>, py::arg("x"), py::arg("axis") = py::none(), py::arg("keepdims") = false,
        "Index (int64) of the first maximum along axis (None: of the flattened array); NaN wins, as numpy.");
  m.def("argmin", &argext<false>, py::arg("x"), py::arg("axis") = py::none(), py::arg("keepdims") = false,
        "Index (int64) of the first minimum along axis (None: of the flattened array); NaN wins, as numpy.");
}

}  // namespace gf

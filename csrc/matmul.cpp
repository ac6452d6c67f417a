// matmul(a, b, trans_a, trans_b, bias): op(a) @ op(b) (+ bias) on OpenBLAS's sgemm/dgemm,
// with numpy-style broadcasting of the batch dimensions (all but the last two).
//
// No operand is copied when its last two axes are a row-major or column-major matrix with
// unit element stride and a leading dimension at least the row (column) length: the layout
// becomes BLAS's transpose flag and leading dimension. Anything else in the last two axes
// (step slices, negative or zero strides) is first made C-contiguous. Batch axes may have any
// strides (including broadcast and negative): they only move the matrix's base pointer.
//
// Batched products: when b has no batch (or all its batch axes are 1) and a's batch axes and
// rows form one evenly spaced block of rows, the whole product is ONE gemm of
// (batch*m, k) x (k, n) (the Linear layer's case); otherwise one gemm per batch entry, called
// from this thread (each gemm threads itself on the OpenMP pool; never from inside an OpenMP
// region, where its jobs could not all run at once).
// bias (n,) is fused: C is pre-filled with it and gemm runs with beta = 1.
//
// linear_relu(x, w, bias) is relu(matmul(x, w, False, True, bias)) with the ReLU as an epilogue:
// one in-place pass over the output right after the GEMM wrote it (still in cache), bitwise
// the values of the two ops run one after the other.
#include "common.h"
#include "kernels/table.h"

#include <cblas.h>

#include <climits>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gf {
namespace {

std::string flag_str(bool f) { return f ? "True" : "False"; }

// A matrix operand as BLAS sees it: the stored row-major matrix S (leading dimension ld, in
// elements) with op(x) = t ? S^T : S, plus the byte strides of the batch axes.
struct Operand {
  py::array arr;  // the array read (the argument itself, or its contiguous copy)
  const char* base = nullptr;
  bool t = false;
  index_t ld = 1;
  std::vector<index_t> bshape, bstride;  // batch axes (all but the last two), strides in bytes
};

// Can the last two axes (R x C, byte strides s0, s1) go to BLAS as they are? Sets col (the
// memory is the transpose of a row-major C x R matrix) and ld.
bool classify(index_t R, index_t C, index_t s0, index_t s1, index_t it, bool& col, index_t& ld) {
  auto lead = [&](index_t s, index_t need, index_t& out) {
    if (s <= 0 || s % it != 0 || s / it < need) return false;
    out = s / it;
    return true;
  };
  // row-major: unit stride along a row, rows ld >= C apart
  if (C <= 1 || s1 == it) {
    index_t l = std::max<index_t>(C, 1);
    if (R <= 1 || lead(s0, std::max<index_t>(C, 1), l)) {
      col = false;
      ld = l;
      return true;
    }
  }
  // column-major: unit stride down a column, columns ld >= R apart
  if (R <= 1 || s0 == it) {
    index_t l = std::max<index_t>(R, 1);
    if (C <= 1 || lead(s1, std::max<index_t>(R, 1), l)) {
      col = true;
      ld = l;
      return true;
    }
  }
  return false;
}

// The operand as BLAS can take it: its own memory, or a C-contiguous copy when the last two
// axes are no BLAS matrix or their leading dimension exceeds the 32-bit BLAS's int.
Operand prepare(const py::array& x, bool trans) {
  Operand o;
  o.arr = x;
  const int nd = int(x.ndim());
  const index_t it = x.itemsize();
  bool col = false;
  index_t ld = 1;
  if (!classify(x.shape(nd - 2), x.shape(nd - 1), x.strides(nd - 2), x.strides(nd - 1), it, col, ld) ||
      ld > INT_MAX) {
    o.arr = c_contiguous(x);
    bool ok = classify(o.arr.shape(nd - 2), o.arr.shape(nd - 1), o.arr.strides(nd - 2),
                       o.arr.strides(nd - 1), it, col, ld);
    // (m, n and k fit an int, checked before: so does the copy's leading dimension)
    if (!ok || ld > INT_MAX) throw std::logic_error("matmul: contiguous copy not usable by BLAS");
  }
  o.base = static_cast<const char*>(o.arr.data());
  o.t = trans != col;
  o.ld = ld;
  for (int d = 0; d < nd - 2; ++d) {
    o.bshape.push_back(o.arr.shape(d));
    o.bstride.push_back(o.arr.strides(d));
  }
  return o;
}

inline void blas_gemm(bool ta, bool tb, int m, int n, int k, const float* A, int lda, const float* B,
                      int ldb, float beta, float* C, int ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
}
inline void blas_gemm(bool ta, bool tb, int m, int n, int k, const double* A, int lda, const double* B,
                      int ldb, double beta, double* C, int ldc) {
  scipy_cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    m, n, k, 1.0, A, lda, B, ldb, beta, C, ldc);
}

// A threaded product is split into blocks of the output's columns (of its rows when they are
// more than twice as many), each a single-threaded BLAS call, that the threads take as they
// come (see init_threads). One block per thread: each call packs its share of both operands
// again, so that more blocks cost more (2 threads: a small MLP's step at 0.75x its one-thread
// time with two blocks per thread, 0.70x with one), and a thread kept off its core by another
// process is the pool's stall guard's to handle. Blocks of at least kGemmBlockFlops and
// kGemmAlign columns or rows; the split depends on the shape and the thread count only, so a
// result never depends on which thread ran what.
constexpr double kGemmBlockFlops = 4e6;
constexpr int kGemmAlign = 16;

template <class T>
void gemm(bool ta, bool tb, int m, int n, int k, const T* A, int lda, const T* B, int ldb, T beta,
          T* C, int ldc) {
  const int nt = num_threads();
  const bool by_rows = m > 2 * n;
  const int len = by_rows ? m : n;
  const double flops = 2.0 * m * n * k;
  const int blocks = nt > 1 ? int(std::min({double(nt), flops / kGemmBlockFlops, double(len / kGemmAlign)})) : 1;
  if (blocks <= 1) {
    blas_gemm(ta, tb, m, n, k, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const index_t units = len / kGemmAlign;  // block edges on multiples of kGemmAlign
  parallel_chunks(blocks, [&](int c) {
    const index_t b = units * c / blocks * kGemmAlign;
    const index_t e = c + 1 == blocks ? len : units * (c + 1) / blocks * kGemmAlign;
    if (by_rows)
      blas_gemm(ta, tb, int(e - b), n, k, ta ? A + b : A + b * lda, lda, B, ldb, beta, C + b * ldc, ldc);
    else
      blas_gemm(ta, tb, m, int(e - b), k, A, lda, tb ? B + b * ldb : B + b, ldb, beta, C + b, ldc);
  });
}

// Fills the (rows, n) C-contiguous block at c with the bias row (or zeros when bias is null).
template <class T>
void prefill(T* c, index_t rows, index_t n, const T* bias) {
  parallel_for(rows * n, kGrain, [&](index_t b, index_t e) {
    if (!bias) {
      std::memset(c + b, 0, size_t(e - b) * sizeof(T));
      return;
    }
    index_t i = b;
    while (i < e) {
      index_t j = i % n, len = std::min(n - j, e - i);
      std::memcpy(c + i, bias + j, size_t(len) * sizeof(T));
      i += len;
    }
  });
}

// The ReLU epilogue: c = relu(c) in place, over the whole (rows * n) output.
template <class T>
void relu_epilogue(T* c, index_t count) {
  parallel_for(count, kGrain, [&](index_t b, index_t e) { kern<T>().relu_inplace(c + b, e - b); });
}

// The 32-bit BLAS takes m, n, k and the leading dimensions as int: larger ones are an error
// (raised before any memory is allocated), not the BLAS's "illegal value" and an unwritten output.
void check_int(index_t v, const char* what, const py::array& a, const py::array& b) {
  if (v > INT_MAX)
    throw py::value_error(std::string("matmul: ") + what + " = " + std::to_string(v) +
                          " exceeds the BLAS's 32-bit limit (" + std::to_string(INT_MAX) +
                          "), for a: " + describe(a) + " and b: " + describe(b));
}

// If a's batch axes and its m rows form one evenly spaced run of rows (and op(a) is not
// transposed), returns true with the row spacing in elements.
bool rows_collapse(const Operand& a, index_t m, index_t k, index_t it, index_t& ld_out) {
  if (a.t) return false;
  std::vector<index_t> sz, st;
  for (size_t d = 0; d < a.bshape.size(); ++d)
    if (a.bshape[d] != 1) sz.push_back(a.bshape[d]), st.push_back(a.bstride[d]);
  if (m != 1) sz.push_back(m), st.push_back(a.ld * it);
  if (sz.empty()) {
    ld_out = a.ld;
    return true;
  }
  for (size_t i = 0; i + 1 < sz.size(); ++i)
    if (st[i] != sz[i + 1] * st[i + 1]) return false;
  index_t s = st.back();
  if (s <= 0 || s % it != 0 || s / it < std::max<index_t>(k, 1) || s / it > INT_MAX) return false;
  ld_out = s / it;
  return true;
}

template <class T>
py::array run(const py::array& a_in, const py::array& b_in, bool trans_a, bool trans_b,
              const py::array* bias_in, const std::vector<py::ssize_t>& out_batch, index_t m,
              index_t n, index_t k, bool relu) {
  std::vector<py::ssize_t> out_shape = out_batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  py::array_t<T> out = new_array<T>(out_shape);
  index_t batch = 1;
  for (auto d : out_batch) batch *= d;
  if (batch == 0 || m == 0 || n == 0) return std::move(out);

  py::array bias;
  const T* bias_p = nullptr;
  if (bias_in) {
    bias = c_contiguous(*bias_in);
    bias_p = static_cast<const T*>(bias.data());
  }
  T* c = out.mutable_data();
  const index_t it = sizeof(T);

  if (k == 0) {  // empty sum: zeros, plus the bias
    NoGilIf nogil(true);
    prefill<T>(c, batch * m, n, bias_p);
    if (relu) relu_epilogue<T>(c, batch * m * n);
    return std::move(out);
  }

  Operand A = prepare(a_in, trans_a);
  Operand B = prepare(b_in, trans_b);
  const T beta = bias_p ? T(1) : T(0);

  // Strides (bytes) of each operand along the output's batch axes; 0 where broadcast.
  const size_t nb = out_batch.size();
  std::vector<index_t> sa(nb, 0), sb(nb, 0);
  bool b_has_batch = false;
  for (size_t d = 0; d < nb; ++d) {
    size_t da = d + A.bshape.size(), db = d + B.bshape.size();  // aligned from the right
    if (da >= nb) {
      size_t i = da - nb;
      if (A.bshape[i] != 1) sa[d] = A.bstride[i];
    }
    if (db >= nb) {
      size_t i = db - nb;
      if (B.bshape[i] != 1) sb[d] = B.bstride[i], b_has_batch = true;
    }
  }

  index_t lda_rows = 0;
  if (batch > 1 && !b_has_batch && batch * m <= INT_MAX && rows_collapse(A, m, k, it, lda_rows)) {
    // One gemm: (batch*m, k) x op(b) -> the whole output.
    NoGilIf nogil(true);
    if (bias_p) prefill<T>(c, batch * m, n, bias_p);
    gemm(false, B.t, int(batch * m), int(n), int(k), reinterpret_cast<const T*>(A.base), int(lda_rows),
         reinterpret_cast<const T*>(B.base), int(B.ld), beta, c, int(n));
    if (relu) relu_epilogue<T>(c, batch * m * n);
    return std::move(out);
  }

  NoGilIf nogil(true);
  if (bias_p) prefill<T>(c, batch * m, n, bias_p);
  std::vector<index_t> idx(nb, 0);
  index_t oa = 0, ob = 0;  // byte offsets of the current batch entry
  for (index_t e = 0; e < batch; ++e) {
    gemm(A.t, B.t, int(m), int(n), int(k), reinterpret_cast<const T*>(A.base + oa), int(A.ld),
         reinterpret_cast<const T*>(B.base + ob), int(B.ld), beta, c + e * m * n, int(n));
    for (size_t d = nb; d-- > 0;) {  // odometer over the batch axes
      if (++idx[d] < out_batch[d]) {
        oa += sa[d];
        ob += sb[d];
        break;
      }
      oa -= sa[d] * (idx[d] - 1);
      ob -= sb[d] * (idx[d] - 1);
      idx[d] = 0;
    }
  }
  if (relu) relu_epilogue<T>(c, batch * m * n);
  return std::move(out);
}

py::array matmul_impl(const py::array& a, const py::array& b, bool trans_a, bool trans_b,
                      const py::object& bias_obj, bool relu) {
  std::optional<py::array> bias;
  if (!bias_obj.is_none()) bias = as_array(bias_obj, "matmul: bias");
  DType dt = bias ? same_float_dtype("matmul", {&a, &b, &*bias}) : same_float_dtype("matmul", {&a, &b});
  if (a.ndim() < 2 || b.ndim() < 2)
    throw py::value_error("matmul: a and b need at least 2 dimensions, got a: " + describe(a) +
                          " and b: " + describe(b));
  const int na = int(a.ndim()), nbd = int(b.ndim());
  const index_t m = trans_a ? a.shape(na - 1) : a.shape(na - 2);
  const index_t ka = trans_a ? a.shape(na - 2) : a.shape(na - 1);
  const index_t kb = trans_b ? b.shape(nbd - 1) : b.shape(nbd - 2);
  const index_t n = trans_b ? b.shape(nbd - 2) : b.shape(nbd - 1);
  if (ka != kb)
    throw py::value_error("matmul: inner dimensions differ: a: " + describe(a) + " (trans_a=" +
                          flag_str(trans_a) + ") gives op(a) of shape (" + std::to_string(m) + ", " +
                          std::to_string(ka) + "), b: " + describe(b) + " (trans_b=" + flag_str(trans_b) +
                          ") gives op(b) of shape (" + std::to_string(kb) + ", " + std::to_string(n) + ")");
  // broadcast the batch axes
  const int ba = na - 2, bb = nbd - 2, nb = std::max(ba, bb);
  std::vector<py::ssize_t> out_batch(nb);
  for (int d = 0; d < nb; ++d) {
    int ia = d - (nb - ba), ib = d - (nb - bb);
    py::ssize_t sa = ia >= 0 ? a.shape(ia) : 1, sb = ib >= 0 ? b.shape(ib) : 1;
    if (sa != sb && sa != 1 && sb != 1)
      throw py::value_error("matmul: batch dimensions do not broadcast: a: " + describe(a) + ", b: " +
                            describe(b));
    out_batch[d] = sa == 1 ? sb : sa;
  }
  if (bias) {
    if (bias->ndim() != 1 || bias->shape(0) != n)
      throw py::value_error("matmul: bias must have shape (" + std::to_string(n) + ",) (the output's last dimension), got " +
                            describe(*bias));
  }
  check_int(m, "m (rows of op(a))", a, b);
  check_int(n, "n (columns of op(b))", a, b);
  check_int(ka, "k (the inner dimension)", a, b);
  const py::array* bp = bias ? &*bias : nullptr;
  if (dt == DType::f32) return run<float>(a, b, trans_a, trans_b, bp, out_batch, m, n, ka, relu);
  return run<double>(a, b, trans_a, trans_b, bp, out_batch, m, n, ka, relu);
}

py::array matmul(const py::array& a, const py::array& b, bool trans_a, bool trans_b,
                 const py::object& bias) {
  return matmul_impl(a, b, trans_a, trans_b, bias, false);
}

py::array linear_relu(const py::array& x, const py::array& w, const py::object& bias) {
  return matmul_impl(x, w, false, true, bias, true);
}

}  // namespace

void bind_matmul(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("bias") = py::none(),
        "op(a) @ op(b) (+ bias), op swapping the last two axes when its flag is set; batch axes "
        "broadcast. a and b need ndim >= 2; bias has shape (n,).");
  m.def("linear_relu", &linear_relu, py::arg("x"), py::arg("w"), py::arg("bias") = py::none(),
        "relu(x @ w^T (+ bias)), the ReLU applied to the GEMM's output in place: bitwise "
        "relu(matmul(x, w, False, True, bias)).");
}

}  // namespace gf

// Fused optimizer updates over one contiguous range, in place: SGD (momentum, dampening,
// Nesterov, weight decay) and Adam / AdamW, with PyTorch's exact update rules (the argument
// handling is in optim.cpp).
//
// A family header of the dispatched kernels: no include guard, code in namespace
// gf::GF_KERNEL_NS (see table.h).

#define GF_OPTIM_TABLE                     \
  GF_KERNEL(sgd_plain, sgd_plain<T>)       \
  GF_KERNEL(sgd_momentum, sgd_momentum<T>) \
  GF_KERNEL(adam, adam<T>)

namespace gf {
namespace GF_KERNEL_NS {

// ---- SGD ------------------------------------------------------------------------------------
// d = g + wd p; with momentum: buf = first ? d : mu buf + (1 - damp) d;
// d = nesterov ? d + mu buf : buf; p -= lr d.
template <class T>
void sgd_plain(T* p, const T* g, index_t n, T lr, T wd) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    T d = g[i] + wd * p[i];
    p[i] = p[i] - lr * d;
  }
}

template <class T>
void sgd_momentum(T* p, const T* g, T* buf, index_t n, T lr, T wd, T mu, T damp1, bool nesterov,
                  bool first) {
  if (first) {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) {
      T d = g[i] + wd * p[i];
      buf[i] = d;
      T u = nesterov ? d + mu * d : d;
      p[i] = p[i] - lr * u;
    }
  } else {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) {
      T d = g[i] + wd * p[i];
      T b = mu * buf[i] + damp1 * d;
      buf[i] = b;
      T u = nesterov ? d + mu * b : b;
      p[i] = p[i] - lr * u;
    }
  }
}

// ---- Adam / AdamW ---------------------------------------------------------------------------
// decoupled (AdamW): p *= 1 - lr wd;  else (Adam): g += wd p.
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps).
template <class T>
void adam(T* p, const T* g, T* m, T* v, index_t n, T b1, T omb1, T b2, T omb2, T step_size,
          T bc2_sqrt, T eps, T wd, T decay, bool decoupled) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    T pi = p[i];
    T gi = g[i];
    if (decoupled)
      pi = pi * decay;
    else
      gi = gi + wd * pi;
    T mi = b1 * m[i] + omb1 * gi;
    T vi = b2 * v[i] + omb2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps);
  }
}

}  // namespace GF_KERNEL_NS
}  // namespace gf

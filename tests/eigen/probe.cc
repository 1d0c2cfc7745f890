// Eigen's own GEMM under the cache sizes of other CPUs: does the float sum of A (64×K) · B
// (K×256) depend on the L1 size Eigen blocks by? Built by tests/test_eigen_probe.py with
// g++ -O2 -mavx2 -mfma against Debian's libeigen3-dev (Eigen 3.4); nothing of tfpersist in it.
//
// usage: probe L1 L2 L3 K CUT   (bytes; CUT = 0: one product; CUT = n: K cut into blocks of at
// most n, each block's product added to the result in order, as pipeline/portable.py does)
// prints: the FNV-1a hash of the product's bytes, then of a TensorMap::contract of the same.
#include <Eigen/Dense>
#include <unsupported/Eigen/CXX11/Tensor>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

static uint64_t fnv(const float* data, long n) {
  uint64_t h = 1469598103934665603ULL;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data);
  for (long i = 0; i < n * static_cast<long>(sizeof(float)); ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: probe L1 L2 L3 K CUT\n");
    return 2;
  }
  const std::ptrdiff_t l1 = std::atol(argv[1]), l2 = std::atol(argv[2]), l3 = std::atol(argv[3]);
  const long k = std::atol(argv[4]), cut = std::atol(argv[5]);
  Eigen::setCpuCacheSizes(l1, l2, l3);
  std::mt19937 gen(2026);
  std::normal_distribution<float> normal;
  Eigen::MatrixXf a(64, k), b(k, 256);
  for (long j = 0; j < k; ++j)
    for (long i = 0; i < 64; ++i) a(i, j) = normal(gen);
  for (long j = 0; j < 256; ++j)
    for (long i = 0; i < k; ++i) b(i, j) = normal(gen);

  Eigen::MatrixXf c = Eigen::MatrixXf::Zero(64, 256);
  const long step = cut > 0 ? cut : k;
  for (long k0 = 0; k0 < k; k0 += step) {
    const long n = std::min(step, k - k0);
    Eigen::MatrixXf part = a.middleCols(k0, n) * b.middleRows(k0, n);
    c += part;
  }

  Eigen::TensorMap<Eigen::Tensor<float, 2>> ta(a.data(), 64, k), tb(b.data(), k, 256);
  Eigen::Tensor<float, 2> tc(64, 256);
  tc.setZero();
  const Eigen::array<Eigen::IndexPair<int>, 1> dims = {Eigen::IndexPair<int>(1, 0)};
  for (long k0 = 0; k0 < k; k0 += step) {
    const long n = std::min(step, k - k0);
    Eigen::array<Eigen::Index, 2> a_off = {0, k0}, a_ext = {64, n}, b_off = {k0, 0}, b_ext = {n, 256};
    Eigen::Tensor<float, 2> part = ta.slice(a_off, a_ext).contract(tb.slice(b_off, b_ext), dims);
    tc = tc + part;
  }
  std::printf("%016llx %016llx\n", static_cast<unsigned long long>(fnv(c.data(), c.size())),
              static_cast<unsigned long long>(fnv(tc.data(), tc.size())));
  return 0;
}

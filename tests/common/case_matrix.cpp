#include "common/case_matrix.hpp"

namespace linattn::test {

namespace {
// Sets the first valid decay/beta pair at or after position `i` of the 3 x 3 grid.
void pick_valid_gating(LinearAttentionCase& c, int i) {
  for (int k = 0; k < 9; ++k) {
    const int j = (i + k) % 9;
    c.decay = kMatrixDecays[j % 3];
    c.beta = kMatrixBetas[j / 3];
    if (c.valid()) return;
  }
}
}  // namespace

std::vector<LinearAttentionCase> build_attention_matrix(const MatrixAxes& axes) {
  std::vector<LinearAttentionCase> cases;
  uint64_t seed = axes.first_seed;
  const size_t nlen = axes.lengths.size(), ndims = axes.dims.size();
  for (linattn_update_rule rule : kMatrixRules) {
    int n = 0;  // counter that drives the cycling axes
    auto cycle = [&](LinearAttentionCase& c) {
      const HeadDims d = axes.dims[n % ndims];
      c.dk = d.dk;
      c.dv = d.dv;
      c.has_past = (n % 7) != 3;  // mostly with a past state, regularly without
      c.B = 1 + (n % 2);
      c.scale = (n % 11 == 5) ? 0.37f : 0.f;
      c.seed = seed++;
      ++n;
    };
    // A: mapping x decay x beta x strided.
    for (const HeadMapping& m : kMatrixMappings)
      for (DecayKind dk : kMatrixDecays)
        for (BetaKind bk : kMatrixBetas)
          for (bool strided : {false, true}) {
            LinearAttentionCase c;
            c.rule = rule;
            c.Hq = m.Hq;
            c.Hk = m.Hk;
            c.Hkv = m.Hkv;
            c.decay = dk;
            c.beta = bk;
            if (!c.valid()) continue;
            c.strided = strided;
            c.act_dtype = kMatrixDtypes[n % 3];
            c.state_dtype = kMatrixDtypes[(n / 3) % 3];
            c.T = axes.lengths[n % nlen];
            cycle(c);
            cases.push_back(c);
          }
    // B: act dtype x state dtype x length.
    for (linattn_dtype act : kMatrixDtypes)
      for (linattn_dtype state : kMatrixDtypes)
        for (int64_t T : axes.lengths) {
          LinearAttentionCase c;
          c.rule = rule;
          const HeadMapping m = kMatrixMappings[n % 4];
          c.Hq = m.Hq;
          c.Hk = m.Hk;
          c.Hkv = m.Hkv;
          pick_valid_gating(c, n);
          c.strided = (n % 2) == 1;
          c.act_dtype = act;
          c.state_dtype = state;
          c.T = T;
          cycle(c);
          cases.push_back(c);
        }
  }
  return cases;
}

}  // namespace linattn::test

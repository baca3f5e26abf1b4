// libFuzzer target for the file provider's ACL (worker/authz/authz_file.h): Acl::parse of an
// ACL text, then questions "may USER (with GROUPS) read ROOM?" to Acl::allows.
// Built by CMake with -DPSDM_FUZZ=ON; run with `make fuzz` (README, "Fuzzing").
//
// Input: the ACL text up to the first NUL byte (a NUL in the file is a control character,
// refused anyway); after it, one question per line: "ROOM USER GROUP..." split on single
// spaces (an empty USER is an anonymous connection). More questions are made from the
// text itself: each pattern as a room (with its '*'s dropped and as "x"s), asked by each
// name on the line, by an anonymous connection and by a stranger.
// Checks, beyond the sanitizers, against a small model written from the header's syntax
// (the model is deliberately naive: a line at a time, a dynamic-programming glob):
//   - parse accepts exactly what the model accepts; a refusal says "fuzz.acl:LINE: " with the
//     model's first bad line, and leaves the Acl it was given untouched; rule_count agrees;
//   - acl_glob_match agrees with the model's glob on every (pattern, room) asked;
//   - allows() answers as the model does, and says why: "granted by fuzz.acl:N" where N is
//     the first line of a pattern that matches and grants, or "no line of fuzz.acl grants it".
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "authz/authz.h"
#include "authz/authz_file.h"

// The model is not instrumented for coverage: its branches should not steer the fuzzer, and
// tracing its comparisons was most of the cost.
#define PSDM_FUZZ_MODEL __attribute__((no_sanitize("coverage")))

namespace {

const std::string kSource = "fuzz.acl";
constexpr size_t kMaxQuestions = 32;
constexpr size_t kMaxRoom = 300;          // rooms asked are cut here (the glob model is O(n * m))
constexpr size_t kGlobBudget = 1u << 16;  // pattern x room bytes globbed per input, at most

bool blank(char ch) { return ch == ' ' || ch == '\t'; }

// '*' matches any run of bytes; the classic table, no backtracking. name.size() <= kMaxRoom.
PSDM_FUZZ_MODEL bool model_glob(std::string_view pattern, std::string_view name) {
    bool row[kMaxRoom + 1], next[kMaxRoom + 1];
    row[0] = true;
    for (size_t j = 1; j <= name.size(); ++j) row[j] = false;
    for (const char p : pattern) {
        next[0] = p == '*' && row[0];
        for (size_t j = 1; j <= name.size(); ++j)
            next[j] = p == '*' ? (row[j] || next[j - 1]) : (row[j - 1] && name[j - 1] == p);
        std::copy(next, next + name.size() + 1, row);
    }
    return row[name.size()];
}

struct ModelRule {
    std::string pattern;
    size_t line = 0;
    std::vector<std::string> who;  // the WHO tokens as written
};

struct Model {
    std::vector<ModelRule> rules;
    size_t bad_line = 0;  // first line in error, 0 = accepted
};

PSDM_FUZZ_MODEL Model model_parse(std::string_view text) {
    Model m;
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    size_t line_no = 0;
    while (!text.empty()) {
        ++line_no;
        const size_t nl = text.find('\n');
        std::string line(text.substr(0, nl));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        bool bad = line.size() > 4096;
        for (const char ch : line) {
            const auto u = static_cast<unsigned char>(ch);
            bad = bad || (u < 0x20 && ch != '\t') || u == 0x7f;
        }
        for (size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '#' && (i == 0 || blank(line[i - 1]))) line.resize(i);
        }
        std::vector<std::string> tok;
        for (size_t i = 0; i < line.size();) {
            if (blank(line[i])) {
                ++i;
                continue;
            }
            size_t j = i;
            while (j < line.size() && !blank(line[j])) ++j;
            tok.push_back(line.substr(i, j - i));
            i = j;
        }
        if (!bad && tok.empty()) continue;
        bad = bad || tok.size() < 2 || tok[0].size() > 256;
        for (size_t i = 1; i < tok.size() && !bad; ++i) {
            const std::string &w = tok[i];
            if (w == "*" || w == "%anonymous") continue;
            bad = w[0] == '%' || w == "@" || (w[0] == '@' ? w.size() - 1 : w.size()) > 256;
        }
        if (bad) {
            m.bad_line = line_no;
            return m;
        }
        m.rules.push_back({tok[0], line_no, std::vector<std::string>(tok.begin() + 1, tok.end())});
    }
    return m;
}

PSDM_FUZZ_MODEL bool model_grants(const std::vector<std::string> &who, const psdm::Identity &id) {
    for (const std::string &w : who) {
        if (w == "%anonymous" || id.user.empty()) {
            if (w == "%anonymous" && id.user.empty()) return true;
        } else if (w[0] == '@') {
            if (std::find(id.groups.begin(), id.groups.end(), w.substr(1)) != id.groups.end()) return true;
        } else if (w == "*" || w == id.user) {
            return true;
        }
    }
    return false;
}

// Lines sharing a pattern grant together; a pattern is reported by its first line.
PSDM_FUZZ_MODEL bool model_pattern_grants(const Model &m, const std::string &pattern, const psdm::Identity &id) {
    for (const ModelRule &r : m.rules)
        if (r.pattern == pattern && model_grants(r.who, id)) return true;
    return false;
}

struct Question {
    std::string room;
    psdm::Identity who;
};

PSDM_FUZZ_MODEL std::vector<std::string> split_spaces(std::string_view line) {
    std::vector<std::string> out;
    for (;;) {
        const size_t sp = line.find(' ');
        out.emplace_back(line.substr(0, sp));
        if (sp == std::string_view::npos) return out;
        line.remove_prefix(sp + 1);
    }
}

PSDM_FUZZ_MODEL std::vector<Question> questions(std::string_view asked, const Model &m) {
    std::vector<Question> q;
    while (!asked.empty() && q.size() < kMaxQuestions) {
        const size_t nl = asked.find('\n');
        std::vector<std::string> f = split_spaces(asked.substr(0, nl));
        asked.remove_prefix(nl == std::string_view::npos ? asked.size() : nl + 1);
        Question one;
        one.room = f[0].substr(0, kMaxRoom);
        if (f.size() > 1) one.who.user = f[1];
        one.who.groups.assign(f.begin() + std::min<size_t>(f.size(), 2), f.end());
        q.push_back(std::move(one));
    }
    for (const ModelRule &r : m.rules) {
        std::string bare = r.pattern, filled = r.pattern;
        bare.erase(std::remove(bare.begin(), bare.end(), '*'), bare.end());
        std::replace(filled.begin(), filled.end(), '*', 'x');
        std::vector<psdm::Identity> ids = {{"", {}}, {"stranger", {"strangers"}}};
        for (const std::string &w : r.who) {
            if (w[0] == '@') ids.push_back({"member", {"other", w.substr(1)}});
            if (w[0] != '@' && w[0] != '%') ids.push_back({w, {}});
        }
        for (const psdm::Identity &id : ids) {
            if (q.size() + 2 > kMaxQuestions) return q;
            q.push_back({bare, id});
            q.push_back({filled, id});
        }
    }
    return q;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string_view input(reinterpret_cast<const char *>(data), size);
    const size_t nul = input.find('\0');
    const std::string_view text = input.substr(0, nul);
    const Model model = model_parse(text);

    psdm::Acl acl;
    std::string err, why;
    CHECK(psdm::Acl::parse("sentinel alice\n", kSource, &acl, &err) && acl.rule_count() == 1);
    const bool ok = psdm::Acl::parse(text, kSource, &acl, &err);
    CHECK(ok == (model.bad_line == 0));
    if (!ok) {
        CHECK(err.rfind(kSource + ":" + std::to_string(model.bad_line) + ": ", 0) == 0);
        CHECK(acl.rule_count() == 1 && acl.allows({"alice", {}}, "sentinel", &why));
        return 0;
    }
    CHECK(acl.rule_count() == model.rules.size());

    const std::string_view asked = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
    size_t pattern_bytes = 0, budget = kGlobBudget;
    for (const ModelRule &r : model.rules) pattern_bytes += r.pattern.size() + 1;
    for (const Question &q : questions(asked, model)) {
        // Each question costs a glob per rule; a big ACL gets fewer questions.
        const size_t cost = pattern_bytes * (q.room.size() + 1);
        if (cost > budget) break;
        budget -= cost;
        bool expect = false;
        for (const ModelRule &r : model.rules) {
            const bool match = model_glob(r.pattern, q.room);
            CHECK(psdm::acl_glob_match(r.pattern, q.room) == match);
            expect = expect || (match && model_grants(r.who, q.who));
        }
        CHECK(acl.allows(q.who, q.room, &why) == expect);
        if (!expect) {
            CHECK(why == "no line of " + kSource + " grants it");
            continue;
        }
        const std::string prefix = "granted by " + kSource + ":";
        CHECK(why.rfind(prefix, 0) == 0);
        const size_t line = std::strtoul(why.c_str() + prefix.size(), nullptr, 10);
        bool explained = false;
        for (const ModelRule &r : model.rules) {
            if (r.line != line) continue;
            // r.line must be its pattern's first line.
            for (const ModelRule &s : model.rules) CHECK(s.line >= r.line || s.pattern != r.pattern);
            explained = model_glob(r.pattern, q.room) && model_pattern_grants(model, r.pattern, q.who);
        }
        CHECK(explained && why == prefix + std::to_string(line));
    }
    return 0;
}

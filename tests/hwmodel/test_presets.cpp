// The preset data files and their loader.
#include <cdma/hwmodel/presets.hpp>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

namespace hw = cdma::hwmodel;
namespace fs = std::filesystem;

namespace {
fs::path presets() { return fs::path(CDMA_SOURCE_DIR) / "data" / "presets"; }

fs::path copy_presets(const std::string& tag) {
  fs::path d = fs::temp_directory_path() / ("cdma_hw_presets_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  for (auto f : {"gpus.json", "links.json", "engines.json"}) fs::copy_file(presets() / f, d / f);
  return d;
}
void write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }
}  // namespace

TEST(HwPresets, ShippedFilesHoldTheDatasheetNumbers) {
  auto c = hw::PresetCatalog::load(presets());
  EXPECT_DOUBLE_EQ(c.gpu("titan-xp").dram_gbps, 547.7);
  EXPECT_DOUBLE_EQ(c.gpu("titan-x-maxwell").dram_gbps, 336.5);
  EXPECT_DOUBLE_EQ(c.gpu("h100").peak_flops("fp32"), 67e12);
  for (auto n : {"titan-x-maxwell", "titan-xp", "v100", "a100", "h100"}) {
    EXPECT_FALSE(c.gpu(n).sources.empty()) << n;
    EXPECT_GT(c.gpu(n).memory_gib, 0) << n;
  }
  EXPECT_NEAR(c.link("pcie3").nominal_gbps, 15.754, 1e-9);
  EXPECT_NEAR(c.link("pcie4").nominal_gbps, 2 * 15.754, 1e-9);
  EXPECT_NEAR(c.link("pcie5").nominal_gbps, 4 * 15.754, 1e-2);
  EXPECT_DOUBLE_EQ(c.link("pcie3").effective_bytes_per_s(), 15.754 * 0.8 * 1e9);
  EXPECT_FALSE(c.link("nvlink-c2c").sources.empty());
  EXPECT_EQ(c.engines.read_share_of_dram.count("dma"), 1u);
  EXPECT_EQ(hw::codec_family("zlib-6"), "zlib");
  EXPECT_EQ(hw::codec_family("zvc"), "zvc");
}

TEST(HwPresets, UnknownNamesListTheKnownOnes) {
  auto c = hw::PresetCatalog::load(presets());
  try {
    c.gpu("rtx-9090");
    FAIL();
  } catch (const hw::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("titan-xp"), std::string::npos);
  }
  EXPECT_THROW(c.link("pcie9"), hw::ModelError);
  EXPECT_THROW(c.gpu("titan-xp").peak_flops("fp8"), hw::ModelError);
}

TEST(HwPresets, BrokenFilesGiveErrorsNamingFileAndKey) {
  auto d = copy_presets("broken");
  write(d / "links.json",
        "{\"schema\": \"cdma-link-presets\", \"schema_version\": 1, \"links\": [ {\"name\": \"x\", "
        "\"nominal_gbps\": -1, \"efficiency\": 1, \"latency_us\": 0} ]}");
  try {
    hw::PresetCatalog::load(d);
    FAIL();
  } catch (const hw::ModelError& e) {
    std::string w = e.what();
    EXPECT_NE(w.find("links.json"), std::string::npos) << w;
    EXPECT_NE(w.find("nominal_gbps"), std::string::npos) << w;
  }
  write(d / "links.json", "{ not json");
  EXPECT_THROW(hw::PresetCatalog::load(d), hw::ModelError);
  fs::remove(d / "links.json");
  EXPECT_THROW(hw::PresetCatalog::load(d), hw::ModelError);
  fs::remove_all(d);
  EXPECT_THROW(hw::PresetCatalog::load("/nonexistent/presets"), hw::ModelError);
}

// Every class of bad value in the three files: a ModelError naming the file and the field.
TEST(HwPresets, EveryBadValueNamesFileAndField) {
  using nlohmann::json;
  struct Case {
    const char* file;
    std::function<void(json&)> damage;
    std::vector<std::string> words;
  };
  const std::vector<Case> cases = {
      {"gpus.json",
       [](json& j) { j["schema"] = "cdma-link-presets"; },
       {"schema is 'cdma-link-presets'", "cdma-gpu-presets"}},
      {"gpus.json", [](json& j) { j.erase("schema"); }, {"\"schema\""}},
      {"gpus.json", [](json& j) { j["schema_version"] = std::uint64_t{1} << 40; }, {"1099511627776", "newer"}},
      {"gpus.json", [](json& j) { j["schema_version"] = 0; }, {"schema_version 0"}},
      {"gpus.json", [](json& j) { j["schema_version"] = "1"; }, {"integer \"schema_version\""}},
      {"gpus.json", [](json& j) { j["gpus"][1]["peak_tflops"]["fp32"] = 0; }, {"titan-xp.peak_tflops.fp32 = 0", "(0"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["peak_tflops"]["fp16"] = -5; }, {"titan-xp.peak_tflops.fp16"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["dram_gbps"] = 0; }, {"titan-xp.dram_gbps = 0"}},
      {"gpus.json",
       [](json& j) { j["gpus"][1]["dram_gbps"] = "547.7"; },
       {"titan-xp.dram_gbps must be a number", "string"}},
      {"gpus.json",
       [](json& j) { j["gpus"][1]["compute_efficiency"] = 1.5; },
       {"titan-xp.compute_efficiency = 1.5", "1]"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["dram_efficiency"] = 0; }, {"titan-xp.dram_efficiency = 0"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["memory_gib"] = 1e300; }, {"titan-xp.memory_gib"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["long_name"] = 7; }, {"titan-xp.long_name must be a string"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["sources"] = json::array({1}); }, {"titan-xp.sources"}},
      {"gpus.json", [](json& j) { j["gpus"][1]["peak_tflops"] = 12; }, {"titan-xp.peak_tflops' must be an object"}},
      {"gpus.json", [](json& j) { j["gpus"][2]["name"] = "titan-xp"; }, {"'titan-xp' appears twice"}},
      {"gpus.json", [](json& j) { j["gpus"] = json::array(); }, {"non-empty array 'gpus'"}},
      {"gpus.json", [](json& j) { j["gpus"][0] = 3; }, {"must be an object"}},
      {"links.json", [](json& j) { j["links"][0]["efficiency"] = 5; }, {"pcie3.efficiency = 5"}},
      {"links.json", [](json& j) { j["links"][0]["efficiency"] = -0.1; }, {"pcie3.efficiency"}},
      {"links.json", [](json& j) { j["links"][0]["nominal_gbps"] = 0; }, {"pcie3.nominal_gbps = 0"}},
      {"links.json", [](json& j) { j["links"][0]["latency_us"] = -1; }, {"pcie3.latency_us = -1"}},
      {"links.json", [](json& j) { j["links"][0]["latency_us"] = 1e300; }, {"pcie3.latency_us"}},
      {"links.json",
       [](json& j) { j["links"][0]["latency_us"] = nullptr; },
       {"pcie3.latency_us must be a number", "null"}},
      {"links.json", [](json& j) { j["schema_version"] = 2; }, {"schema_version 2 is newer"}},
      {"engines.json", [](json& j) { j["placements"] = json::object(); }, {"placements needs 'dma'"}},
      {"engines.json", [](json& j) { j["placements"]["gpu"] = j["placements"]["mc"]; }, {"unknown placement 'gpu'"}},
      {"engines.json",
       [](json& j) { j["placements"]["dma"]["read_share_of_dram"] = 2; },
       {"placements.dma.read_share_of_dram = 2"}},
      {"engines.json", [](json& j) { j["placements"]["mc"] = 1; }, {"placements.mc must be an object"}},
      {"engines.json", [](json& j) { j["compressor_gbps"]["zsdt"] = 3; }, {"compressor_gbps: unknown key 'zsdt'"}},
      {"engines.json", [](json& j) { j["compressor_gbps"]["zlib"] = -16; }, {"compressor_gbps.zlib = -16"}},
      {"engines.json",
       [](json& j) { j["software_kernel_gbps"]["lz4"] = "fast"; },
       {"software_kernel_gbps.lz4 must be a number"}},
      {"engines.json", [](json& j) { j["schema"] = 1; }, {"\"schema\""}},
  };
  auto d = copy_presets("classes");
  for (const auto& c : cases) {
    std::ifstream in(presets() / c.file);
    json j = json::parse(in);
    c.damage(j);
    for (auto f : {"gpus.json", "links.json", "engines.json"})
      fs::copy_file(presets() / f, d / f, fs::copy_options::overwrite_existing);
    write(d / c.file, j.dump(1));
    try {
      hw::PresetCatalog::load(d);
      ADD_FAILURE() << c.file << ": accepted " << c.words.front();
    } catch (const hw::ModelError& e) {
      const std::string w = e.what();
      EXPECT_NE(w.find((d / c.file).string()), std::string::npos) << w;
      for (const auto& word : c.words) EXPECT_NE(w.find(word), std::string::npos) << "'" << word << "' not in: " << w;
    }
  }
  // A preset path that is a FIFO is refused at once instead of blocking the open.
  for (auto f : {"gpus.json", "links.json", "engines.json"})
    fs::copy_file(presets() / f, d / f, fs::copy_options::overwrite_existing);
  fs::remove(d / "links.json");
  ASSERT_EQ(::mkfifo((d / "links.json").c_str(), 0600), 0);
  try {
    hw::PresetCatalog::load(d);
    ADD_FAILURE() << "accepted a FIFO";
  } catch (const hw::ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(HwPresets, DefaultDirectoryCanBeOverridden) {
  ::setenv("CDMA_PRESETS", "/some/where", 1);
  EXPECT_EQ(hw::default_preset_dir(), fs::path("/some/where"));
  ::unsetenv("CDMA_PRESETS");
  EXPECT_TRUE(fs::exists(hw::default_preset_dir() / "gpus.json"));
}

// A pip-installed package has no source tree to fall back on: its module (cdma/_native*.so) and its
// executable (cdma/bin/cdma) find cdma/data/<sub>; an installed executable finds share/cdma/<sub>.
TEST(HwPresets, InstalledDataIsFoundFromTheBinary) {
  const fs::path root = fs::temp_directory_path() / ("cdma_installed_data_" + std::to_string(::getpid()));
  fs::remove_all(root);
  auto touch = [](const fs::path& p) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << "{}";
  };
  const fs::path pkg = root / "site-packages" / "cdma";
  touch(pkg / "_native.cpython-312-x86_64-linux-gnu.so");
  touch(pkg / "bin" / "cdma");
  // Without the marker file nothing is found (an empty folder is not data).
  fs::create_directories(pkg / "data" / "presets");
  EXPECT_EQ(hw::installed_data_dir(pkg / "_native.cpython-312-x86_64-linux-gnu.so", "presets", "gpus.json"),
            fs::path());
  touch(pkg / "data" / "presets" / "gpus.json");
  EXPECT_EQ(hw::installed_data_dir(pkg / "_native.cpython-312-x86_64-linux-gnu.so", "presets", "gpus.json"),
            pkg / "data" / "presets");
  EXPECT_EQ(hw::installed_data_dir(pkg / "bin" / "cdma", "presets", "gpus.json"), pkg / "data" / "presets");
  EXPECT_EQ(hw::installed_data_dir(pkg / "bin" / "cdma", "zoo", "zoo.json"), fs::path());
  touch(root / "prefix" / "bin" / "cdma");
  touch(root / "prefix" / "share" / "cdma" / "zoo" / "zoo.json");
  EXPECT_EQ(hw::installed_data_dir(root / "prefix" / "bin" / "cdma", "zoo", "zoo.json"),
            root / "prefix" / "share" / "cdma" / "zoo");
  EXPECT_EQ(hw::installed_data_dir(fs::path(), "zoo", "zoo.json"), fs::path());
  fs::remove_all(root);
}

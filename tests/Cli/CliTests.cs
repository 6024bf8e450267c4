using ZeroFL.Cli;

namespace ZeroFL.Tests.Cli;

/// <summary>The command line: bad input gives one line on stderr and exit code 2.</summary>
[NonParallelizable]
public sealed class CliTests
{
    /// <summary>Runs the CLI in this process and returns its exit code, stdout and stderr.</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var originalOut = Console.Out;
        var originalErr = Console.Error;
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = Program.Main(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(originalOut);
            Console.SetError(originalErr);
        }
    }

    [TestCase("train", "--epochs", "0")]
    [TestCase("train", "--batch-size", "-3")]
    [TestCase("train", "--lr", "-1")]
    [TestCase("train", "--model", "vgg")]
    [TestCase("train", "--device", "tpu")]
    [TestCase("train", "--epochs", "many")]
    [TestCase("train", "--no-such-option")]
    [TestCase("train", "--sparsity", "1")]
    [TestCase("train", "--topk-period", "0")]
    [TestCase("profile", "--sparsity", "0")]
    [TestCase("run", "--strategy", "best")]
    [TestCase("run", "--clients-per-round", "500")]
    [TestCase("run", "--mask-ratio", "0.95")]
    [TestCase("run", "--rounds", "0")]
    [TestCase("run", "--partition", "zipf")]
    [TestCase("run", "--uplink-encoding", "zip")]
    [TestCase("run", "--upload-values", "fp8")]
    [TestCase("run", "--strategy", "swat", "--sparsity", "0")]
    [TestCase("profile", "--model", "alexnet")]
    [TestCase("run", "--preset", "imagenet")]
    [TestCase("run", "--client-failure-rate", "1.5")]
    [TestCase("run", "--checkpoint-every", "0")]
    [TestCase("run", "--val-fraction", "1")]
    [TestCase("run", "--val-fraction", "-0.1")]
    [TestCase("run", "--mask-record-every", "0")]
    [TestCase("run", "--server-optimizer", "sgd")]
    [TestCase("run", "--server-lr", "0.1")]
    [TestCase("run", "--server-optimizer", "fedadam", "--server-lr", "0")]
    [TestCase("run", "--server-optimizer", "fedyogi", "--server-beta1", "1")]
    [TestCase("run", "--server-optimizer", "fedadam", "--server-beta2", "-0.5")]
    [TestCase("run", "--server-optimizer", "fedadam", "--server-tau", "0")]
    [TestCase("run", "--server-optimizer", "fedadagrad", "--server-beta2", "0.9")]
    [TestCase("data", "speech-demo", "--out", "x", "--speakers", "1")]
    [TestCase("data", "imagenet", "--out", "x")]
    [TestCase("report")]
    [TestCase("run", "--dataset", "svhn")]
    [TestCase("run", "--partition", "natural")]
    [TestCase("sweep", "--sparsities", "0.9,lots", "--out", "x")]
    [TestCase("sweep", "--strategies", "topk-weights,best", "--out", "x")]
    [TestCase("sweep", "--mask-ratios", "0.1")]
    [TestCase("frobnicate")]
    [TestCase("run", "--recompute")]
    [TestCase("train", "--model", "femnist-cnn", "--recompute")]
    [TestCase("profile", "--model", "cnn", "--recompute")]
    public void BadCommandLineGivesOneLineAndExitCode2(params string[] args)
    {
        var (code, _, err) = Run(args);
        Assert.That(code, Is.EqualTo(Program.UsageError), err);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), err);
        Assert.That(lines[0], Does.StartWith("zerofl: "));
    }

    [TestCase("out")]
    [TestCase("cuda")]
    [TestCase("sized")]
    public void OutOfMemoryIsOneLineWithAHint(string kind)
    {
        var originalErr = Console.Error;
        using var stderr = new StringWriter();
        Console.SetError(stderr);
        try
        {
            int code = Program.Run(() => throw (kind switch
            {
                "out" => new OutOfMemoryException("Insufficient memory to continue the execution of the program."),
                "cuda" => new InvalidOperationException("ErrorOutOfMemory", new Exception("CUDA_ERROR_OUT_OF_MEMORY")),
                _ => new InsufficientMemoryException("out of memory on cuda:0 H100 (80.0 GB; the data takes 737 MB of it, model resnet18, batch 512): try a smaller --batch-size"),
            }));
            Assert.That(code, Is.EqualTo(Program.RuntimeError));
        }
        finally
        {
            Console.SetError(originalErr);
        }
        var lines = stderr.ToString().Trim().Split('\n');
        Assert.That(lines, Has.Length.EqualTo(1));
        Assert.That(lines[0], Does.StartWith("zerofl: out of memory").And.Contain("--batch-size"));
    }

    [Test]
    public void NoVerbIsAUsageError()
    {
        var (code, _, err) = Run();
        Assert.That(code, Is.EqualTo(Program.UsageError));
        Assert.That(err, Does.Contain("--help"));
    }

    [Test]
    public void HelpListsEveryTrainOption()
    {
        var (code, output, _) = Run("train", "--help");
        Assert.That(code, Is.EqualTo(0));
        foreach (var option in new[] { "--dataset", "--data-dir", "--model", "--epochs", "--batch-size", "--lr", "--device", "--out" })
        {
            Assert.That(output, Does.Contain(option));
        }
    }

    [Test]
    public void DevicesListsTheCpuAcceleratorAndTheAutoChoice()
    {
        var (code, output, err) = Run("devices");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("cpu:0"));
        Assert.That(output, Does.Contain("<- auto"));
    }

    [Test]
    public void TrainRunsEndToEndOnASmallGeneratedDatasetAndWritesTheSummary()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 96, testCount: 40, gzip: true);
        string outDir = Path.Combine(files.Directory, "run");
        var (code, output, err) = Run("train", "--data-dir", files.Directory, "--device", "cpu", "--batch-size", "32",
            "--out", outDir, "--sparsity", "0.9", "--topk-period", "2");
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("test accuracy"));
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var root = summary.RootElement;
        foreach (var key in new[] { "test_accuracy", "epochs", "train_samples_per_second", "wall_seconds", "device", "train_flops", "dense_train_flops" })
        {
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        }
        Assert.That(root.GetProperty("test_accuracy").GetDouble(), Is.InRange(0.0, 1.0));
        Assert.That(root.GetProperty("batches").GetInt64(), Is.EqualTo(3));
        Assert.That(root.GetProperty("train_flops").GetDouble(), Is.LessThan(root.GetProperty("dense_train_flops").GetDouble()));
    }

    [Test]
    public void RunDoesAThreeRoundFederatedExperimentEndToEnd()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 300, testCount: 50);
        string outDir = Path.Combine(files.Directory, "fl");
        var (code, output, err) = Run("run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "20", "--clients-per-round", "4",
            "--rounds", "3", "--eval-every", "2", "--batch-size", "16", "--out", outDir);
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(output.Split('\n').Count(l => l.StartsWith("round ", StringComparison.Ordinal)), Is.EqualTo(3), output);
        var rows = File.ReadAllLines(Path.Combine(outDir, "metrics.csv"));
        Assert.That(rows[0], Does.StartWith("round,test_accuracy,train_loss,upload_bytes,dense_upload_bytes,train_flops,dense_train_flops,seconds"));
        Assert.That(rows, Has.Length.EqualTo(4));
        Assert.That(rows[1].Split(',')[1], Is.Empty, "round 1 is not evaluated");
        Assert.That(rows[2].Split(',')[1], Is.Not.Empty, "round 2 is");
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        var root = summary.RootElement;
        foreach (var key in new[] { "final_test_accuracy", "rounds", "clients", "clients_per_round", "strategy", "sparsity", "mask_ratio",
            "uplink_bytes_total", "dense_uplink_bytes_total", "train_flops_total", "dense_train_flops_total", "wall_seconds", "failed_clients" })
        {
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        }
        Assert.That(root.GetProperty("strategy").GetString(), Is.EqualTo("topk-weights"));
        Assert.That(root.GetProperty("uplink_bytes_total").GetInt64(), Is.LessThan(root.GetProperty("dense_uplink_bytes_total").GetInt64()));
        Assert.That(root.GetProperty("failed_clients").GetInt32(), Is.EqualTo(0));
        Assert.That(File.ReadAllLines(Path.Combine(outDir, "layers.csv")), Has.Length.EqualTo(1 + 3 * 2), "two sparse layers per round");
    }

    /// <summary>
    /// The uplink layouts are lossless: the same seed with --uplink-encoding auto and csr32 gives
    /// the same model file and accuracy; auto sends fewer bytes, split by layout in summary.json.
    /// </summary>
    [Test]
    public void UplinkEncodingAutoAndCsr32GiveTheSameModelBitForBit()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 300, testCount: 50);
        SmallRun RunWith(string encoding) => SmallRun.Of(files, encoding, "--uplink-encoding", encoding, "--quiet");
        var auto = RunWith("auto");
        var csr32 = RunWith("csr32");
        Assert.That(auto.Model, Is.EqualTo(csr32.Model), "the same model bytes");
        Assert.That(auto.Summary.GetProperty("final_test_accuracy").GetDouble(), Is.EqualTo(csr32.Summary.GetProperty("final_test_accuracy").GetDouble()));
        long autoBytes = auto.Summary.GetProperty("uplink_bytes_total").GetInt64(), csrBytes = csr32.Summary.GetProperty("uplink_bytes_total").GetInt64();
        Assert.That(autoBytes, Is.LessThan(csrBytes));
        var byEncoding = auto.Summary.GetProperty("uplink_bytes_by_encoding").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        Assert.That(byEncoding.Keys, Is.EquivalentTo(new[] { "dense", "bitmap" }), "at 20% kept the sparse layers go as bitmaps");
        Assert.That(byEncoding.Values.Sum(), Is.EqualTo(autoBytes));
        var csrByEncoding = csr32.Summary.GetProperty("uplink_bytes_by_encoding").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        Assert.That(csrByEncoding.Keys, Is.EquivalentTo(new[] { "dense", "csr32" }));
        Assert.That(csrByEncoding.Values.Sum(), Is.EqualTo(csrBytes));
    }

    /// <summary>
    /// --server-optimizer fedavg is the default, the same model byte for byte; fedadam moves the
    /// model elsewhere, keeps m and v beside the checkpoint and is recorded in summary.json.
    /// </summary>
    [Test]
    public void ServerOptimizerFedAvgIsTheDefaultAndFedAdamIsRecorded()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 300, testCount: 50);
        SmallRun RunWith(string name, params string[] extra) => SmallRun.Of(files, name, [.. extra, "--quiet"]);
        var plain = RunWith("plain");
        var fedAvg = RunWith("fedavg", "--server-optimizer", "fedavg");
        var fedAdam = RunWith("fedadam", "--server-optimizer", "fedadam", "--server-lr", "0.01", "--server-tau", "0.001");
        Assert.That(fedAvg.Model, Is.EqualTo(plain.Model), "fedavg: the model of a run without the option");
        Assert.That(fedAdam.Model, Is.Not.EqualTo(plain.Model));
        Assert.That(plain.Summary.GetProperty("server_optimizer").GetProperty("name").GetString(), Is.EqualTo("fedavg"));
        var adam = fedAdam.Summary.GetProperty("server_optimizer");
        Assert.That(adam.GetProperty("name").GetString(), Is.EqualTo("fedadam"));
        Assert.That(adam.GetProperty("lr").GetDouble(), Is.EqualTo(0.01));
        Assert.That(adam.GetProperty("beta1").GetDouble(), Is.EqualTo(0.9), "Flower's default where the option is left out");
        Assert.That(adam.GetProperty("beta2").GetDouble(), Is.EqualTo(0.99));
        Assert.That(adam.GetProperty("tau").GetDouble(), Is.EqualTo(0.001));
        Assert.That(File.Exists(Path.Combine(plain.Directory, "checkpoint.server-optimizer.safetensors")), Is.False);
        Assert.That(File.ReadAllText(Path.Combine(plain.Directory, "checkpoint.json")), Does.Not.Contain("server_optimizer"));
        Assert.That(File.Exists(Path.Combine(fedAdam.Directory, "checkpoint.server-optimizer.safetensors")), Is.True);
        Assert.That(fedAdam.Summary.GetProperty("final_test_accuracy").GetDouble(), Is.InRange(0.0, 1.0), "evaluated (random labels: no accuracy to expect)");
    }

    /// <summary>
    /// --upload-values fp16 / bf16: the sparse layers' slices go with 2-byte values (2 B less per
    /// kept entry, to the byte), named "bitmap+fp16" in summary.json; the dense layers stay fp32;
    /// the rounding changes the model, and the run says which width it used.
    /// </summary>
    [Test]
    public void SixteenBitUploadValuesSaveTwoBytesPerKeptEntry()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 300, testCount: 50);
        SmallRun RunWith(string values)
        {
            var run = SmallRun.Of(files, values, "--upload-values", values);
            Assert.That(run.Output, Does.Contain($"upload values {values}"));
            return run;
        }
        Dictionary<string, long> ByEncoding(System.Text.Json.JsonElement summary) =>
            summary.GetProperty("uplink_bytes_by_encoding").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());
        var fp32 = RunWith("fp32");
        var cnn = new ZeroFL.Engine.Models.SmallCnn(1, 28, 10);
        var settings = new ZeroFL.Federation.Uplink.UplinkSettings(ZeroFL.Federation.Uplink.UplinkStrategy.TopKWeights, 0.9, 0.1);
        long kept = settings.KeepCount((int)cnn.Conv2.Weight.Length) + settings.KeepCount((int)cnn.Fc1.Weight.Length);
        foreach (var width in new[] { "fp16", "bf16" })
        {
            var run = RunWith(width);
            Assert.That(run.Summary.GetProperty("upload_values").GetString(), Is.EqualTo(width));
            var byEncoding = ByEncoding(run.Summary);
            Assert.That(byEncoding.Keys, Is.EquivalentTo(new[] { "dense", $"bitmap+{width}" }), "the slices 16-bit, the dense layers fp32");
            Assert.That(byEncoding["dense"], Is.EqualTo(ByEncoding(fp32.Summary)["dense"]));
            Assert.That(byEncoding[$"bitmap+{width}"], Is.EqualTo(ByEncoding(fp32.Summary)["bitmap"] - 2 * kept * 3 * 4), "2 B less per kept entry, 4 clients x 3 rounds");
            Assert.That(byEncoding.Values.Sum(), Is.EqualTo(run.Summary.GetProperty("uplink_bytes_total").GetInt64()));
            Assert.That(run.Model, Is.Not.EqualTo(fp32.Model), "rounded values give another model");
        }
        Assert.That(fp32.Summary.GetProperty("upload_values").GetString(), Is.EqualTo("fp32"));
    }

    [Test]
    public void SweepRunsTheGridWritesThePapersTableAndSkipsFinishedCells()
    {
        using var files = new ZeroFL.Tests.Data.IdxFiles();
        files.WriteMnistLike(trainCount: 200, testCount: 40);
        string outDir = Path.Combine(files.Directory, "sweep");
        string[] args = ["sweep", "--data-dir", files.Directory, "--device", "cpu", "--clients", "10", "--clients-per-round", "2",
            "--rounds", "1", "--batch-size", "16", "--strategies", "topk-weights,topk-diff", "--mask-ratios", "0,0.2", "--sparsities", "0.9",
            "--quiet", "--out", outDir];
        var (code, output, err) = Run(args);
        Assert.That(code, Is.EqualTo(0), err);
        var csv = File.ReadAllLines(Path.Combine(outDir, "table.csv"));
        Assert.That(csv[0], Is.EqualTo("alpha,sparsity,strategy,mask_ratio,test_accuracy,upload_mb_per_client_round,dense_upload_mb,saving_factor"));
        Assert.That(csv, Has.Length.EqualTo(1 + 1 + 2 * 2), "the SWAT baseline and 2 strategies x 2 mask ratios");
        double Upload(string strategy, string r) => double.Parse(csv.Single(l => l.Split(',')[2] == strategy && l.Split(',')[3] == r).Split(',')[5], System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(Upload("topk-weights", "0"), Is.LessThan(Upload("topk-weights", "0.2")));
        Assert.That(Upload("topk-weights", "0.2"), Is.LessThan(Upload("swat", "0")), "the baseline uploads dense");
        var table = File.ReadAllText(Path.Combine(outDir, "table.md"));
        Assert.That(table, Does.Contain("| topk-diff | 0.2 |"));
        Assert.That(table, Does.Contain("| swat | - |"));
        var report = File.ReadAllText(Path.Combine(outDir, "report.html"));
        var mainCharts = report[..report.IndexOf("<h2>Analyses", StringComparison.Ordinal)];
        Assert.That(System.Text.RegularExpressions.Regex.Matches(mainCharts, "<polyline ").Count, Is.EqualTo(3 * 5), "the sweep's report: five runs in three charts");
        var before = File.GetLastWriteTimeUtc(Path.Combine(outDir, "alpha1-sp0.9-topk-weights-r0", "summary.json"));
        (code, _, err) = Run(args.Where(a => a != "--quiet").ToArray());
        Assert.That(code, Is.EqualTo(0), err);
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(outDir, "alpha1-sp0.9-topk-weights-r0", "summary.json")), Is.EqualTo(before), "a finished cell is not run again");
    }

    [Test]
    public void RunOnFemnistGivesOneClientPerWriter()
    {
        string dir = Directory.CreateTempSubdirectory("zerofl-femnist-").FullName;
        try
        {
            var random = new Random(3);
            string Users(string prefix, int writers, int samples)
            {
                var names = Enumerable.Range(0, writers).Select(w => $"\"{prefix}{w}\"").ToList();
                var data = Enumerable.Range(0, writers).Select(w =>
                    $"\"{prefix}{w}\": {{\"x\": [{string.Join(',', Enumerable.Range(0, samples).Select(_ => "[" + string.Join(',', Enumerable.Range(0, 784).Select(_ => random.Next(2))) + "]"))}], " +
                    $"\"y\": [{string.Join(',', Enumerable.Range(0, samples).Select(_ => random.Next(62)))}]}}");
                return $"{{\"users\": [{string.Join(',', names)}], \"num_samples\": [{string.Join(',', Enumerable.Repeat(samples, writers))}], \"user_data\": {{{string.Join(',', data)}}}}}";
            }
            Directory.CreateDirectory(Path.Combine(dir, "train"));
            Directory.CreateDirectory(Path.Combine(dir, "test"));
            File.WriteAllText(Path.Combine(dir, "train", "all_data_0.json"), Users("f", 5, 12));
            File.WriteAllText(Path.Combine(dir, "test", "all_data_0.json"), Users("f", 5, 3));
            string outDir = Path.Combine(dir, "run");
            var (code, output, err) = Run("run", "--dataset", "femnist", "--model", "femnist-cnn", "--partition", "natural", "--data-dir", dir,
                "--device", "cpu", "--clients-per-round", "2", "--rounds", "1", "--batch-size", "8", "--sparsity", "0.95", "--out", outDir, "--quiet");
            Assert.That(code, Is.EqualTo(0), err);
            using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
            Assert.That(summary.RootElement.GetProperty("clients").GetInt32(), Is.EqualTo(5), "one client per writer");
            Assert.That(summary.RootElement.GetProperty("partition").GetString(), Does.Contain("natural").IgnoreCase);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void RunOnCifar10TrainsOnAugmentedColourImages()
    {
        string dir = Directory.CreateTempSubdirectory("zerofl-cifar-").FullName;
        try
        {
            ZeroFL.Tests.Support.CifarFiles.Write(dir, trainPerBatch: 20, test: 10, seed: 4);
            string outDir = Path.Combine(dir, "run");
            var (code, _, err) = Run("run", "--dataset", "cifar10", "--data-dir", dir, "--device", "cpu", "--clients", "4", "--clients-per-round", "2",
                "--rounds", "1", "--batch-size", "8", "--out", outDir, "--quiet");
            Assert.That(code, Is.EqualTo(0), err);
            using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
            Assert.That(summary.RootElement.GetProperty("dataset").GetString(), Is.EqualTo("cifar10/train"));
            Assert.That(summary.RootElement.GetProperty("final_test_accuracy").GetDouble(), Is.InRange(0.0, 1.0));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// --recompute runs ResNet-18's blocks again in each client's backward: the same model bytes as
    /// the plain run (SWAT at 0.9, each step selecting its top-K), and the summary says so.
    /// </summary>
    [Test]
    public void RunWithRecomputedBlocksGivesTheSameModel()
    {
        string dir = Directory.CreateTempSubdirectory("zerofl-recompute-").FullName;
        try
        {
            ZeroFL.Tests.Support.CifarFiles.Write(dir, trainPerBatch: 12, test: 8, seed: 5);
            byte[] RunOnce(string name, params string[] extra)
            {
                string outDir = Path.Combine(dir, name);
                var (code, _, err) = Run(["run", "--dataset", "cifar10", "--data-dir", dir, "--model", "resnet18", "--device", "cpu", "--clients", "4",
                    "--clients-per-round", "2", "--rounds", "1", "--batch-size", "8", "--sparsity", "0.9", "--out", outDir, "--quiet", .. extra]);
                Assert.That(code, Is.EqualTo(0), err);
                using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
                Assert.That(summary.RootElement.GetProperty("recompute").GetBoolean(), Is.EqualTo(extra.Length > 0));
                return File.ReadAllBytes(Path.Combine(outDir, "model.safetensors"));
            }
            Assert.That(RunOnce("recomputed", "--recompute"), Is.EqualTo(RunOnce("plain")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void ProfileWithRecomputedBlocksReportsALowerPeak()
    {
        System.Text.Json.JsonElement Profile(params string[] extra)
        {
            var (code, output, err) = Run(["profile", "--model", "resnet18", "--input-size", "16", "--batch", "4", "--steps", "1", "--warmup", "1", "--device", "cpu", "--json", .. extra]);
            Assert.That(code, Is.EqualTo(0), err);
            using var json = System.Text.Json.JsonDocument.Parse(output);
            return json.RootElement.Clone();
        }
        var plain = Profile();
        var recomputed = Profile("--recompute");
        Assert.That(plain.GetProperty("recompute").GetBoolean(), Is.False);
        Assert.That(recomputed.GetProperty("recompute").GetBoolean(), Is.True);
        Assert.That(recomputed.GetProperty("peak_step_bytes_dense").GetInt64(), Is.LessThan(plain.GetProperty("peak_step_bytes_dense").GetInt64()));
        Assert.That(recomputed.GetProperty("dense_train_flops").GetDouble(), Is.EqualTo(plain.GetProperty("dense_train_flops").GetDouble()), "the recomputed forwards are not counted");
    }

    [Test]
    public void RunHelpListsEveryOption()
    {
        var (code, output, _) = Run("run", "--help");
        Assert.That(code, Is.EqualTo(0));
        foreach (var option in new[] { "--clients", "--clients-per-round", "--rounds", "--strategy", "--sparsity", "--mask-ratio", "--alpha", "--partition", "--out", "--json", "--server-optimizer", "--server-lr", "--server-beta1", "--server-beta2", "--server-tau", "--recompute" })
        {
            Assert.That(output, Does.Contain(option));
        }
    }

    [Test]
    public void ProfileReportsDenseAndSparseFiguresAsJson()
    {
        var (code, output, err) = Run("profile", "--model", "cnn", "--batch", "8", "--sparsity", "0.9", "--steps", "1", "--warmup", "0", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var root = json.RootElement;
        foreach (var key in new[] { "dense_train_flops", "sparse_train_flops", "dense_step_seconds", "sparse_step_seconds", "retained_activation_bytes_dense", "retained_activation_bytes_sparse", "layers" })
        {
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        }
        Assert.That(root.GetProperty("sparse_train_flops").GetDouble(), Is.LessThan(root.GetProperty("dense_train_flops").GetDouble()));
        Assert.That(root.GetProperty("retained_activation_bytes_sparse").GetInt64(), Is.LessThan(root.GetProperty("retained_activation_bytes_dense").GetInt64()));
        var rows = root.GetProperty("layers").EnumerateArray().ToList();
        Assert.That(rows.Count(r => r.GetProperty("kind").GetString() is "conv" or "linear"), Is.EqualTo(4), "conv1, conv2, fc1, fc2");
        // The whole step is accounted for: every op of it has rows, forward and backward apart.
        var kinds = rows.Select(r => r.GetProperty("kind").GetString()).ToHashSet();
        Assert.That(kinds, Is.SupersetOf(new[] { "zero-grad", "data", "conv", "linear", "relu", "pool", "loss", "optimizer", "topk" }));
        foreach (var run in new[] { "dense", "sparse" })
        {
            double forward = rows.Sum(r => r.GetProperty(run + "_forward_seconds").GetDouble());
            double backward = rows.Sum(r => r.GetProperty(run + "_backward_seconds").GetDouble());
            Assert.That(root.GetProperty(run + "_accounted_seconds").GetDouble(), Is.EqualTo(forward + backward).Within(1e-9), run);
            Assert.That(backward, Is.GreaterThan(0), run);
            Assert.That(root.GetProperty(run + "_profiled_step_seconds").GetDouble(), Is.GreaterThan(0), run);
            var byKind = root.GetProperty("seconds_by_kind_" + run).EnumerateObject().ToList();
            Assert.That(byKind.Sum(k => k.Value[0].GetDouble() + k.Value[1].GetDouble()), Is.EqualTo(forward + backward).Within(1e-9), run);
            Assert.That(root.GetProperty("peak_step_bytes_" + run).GetInt64(), Is.GreaterThan(0), run);
        }
        var optimizer = rows.Single(r => r.GetProperty("kind").GetString() == "optimizer");
        Assert.That(optimizer.GetProperty("sparse_backward_seconds").GetDouble(), Is.GreaterThan(0), "the update runs after backward");
        // The SWAT step still plans top-K and CSR on the host (reads per step); the dense one reads
        // nothing (without warm-up its only syncs are the workspace's first growths).
        Assert.That(root.GetProperty("host_syncs_per_step").GetDouble(), Is.GreaterThan(root.GetProperty("host_syncs_per_step_dense").GetDouble()));
        Assert.That(root.GetProperty("device_to_host_bytes_per_step").GetDouble(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("device_to_host_bytes_per_step_dense").GetDouble(), Is.EqualTo(0));
    }

    [Test]
    public void ProfileAveragesTheSparseStepOverATopKPeriod()
    {
        var (code, output, err) = Run("profile", "--model", "cnn", "--batch", "8", "--sparsity", "0.9", "--topk-period", "4", "--steps", "1", "--warmup", "0", "--device", "cpu", "--json");
        Assert.That(code, Is.EqualTo(0), err);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        var root = json.RootElement;
        double refresh = root.GetProperty("sparse_refresh_step_seconds").GetDouble();
        double reuse = root.GetProperty("sparse_reuse_step_seconds").GetDouble();
        Assert.That(refresh, Is.GreaterThan(0));
        Assert.That(reuse, Is.GreaterThan(0));
        Assert.That(root.GetProperty("sparse_step_seconds").GetDouble(), Is.EqualTo((refresh + 3 * reuse) / 4).Within(1e-9));
    }

    [Test]
    public void MissingDatasetIsARuntimeErrorWithAnInstallHint()
    {
        string empty = Directory.CreateTempSubdirectory("zerofl-empty-").FullName;
        try
        {
            var (code, _, err) = Run("train", "--data-dir", empty, "--device", "cpu", "--out", Path.Combine(empty, "out"));
            Assert.That(code, Is.EqualTo(Program.RuntimeError));
            Assert.That(err.Trim().Split('\n'), Has.Length.EqualTo(1), err);
            Assert.That(err, Does.Contain("fashion-mnist"));
        }
        finally
        {
            Directory.Delete(empty, recursive: true);
        }
    }
}

/// <summary>
/// A three-round run of the small CNN on a generated MNIST-like set (20 clients, 4 a round, batch
/// 16, evaluated after round 3) into a folder named <c>name</c>: its model file, summary.json,
/// folder and stdout. The run must succeed.
/// </summary>
internal sealed record SmallRun(byte[] Model, System.Text.Json.JsonElement Summary, string Directory, string Output)
{
    public static SmallRun Of(ZeroFL.Tests.Data.IdxFiles files, string name, params string[] extra)
    {
        string outDir = Path.Combine(files.Directory, name);
        var (code, output, err) = CliTests.Run(["run", "--data-dir", files.Directory, "--device", "cpu", "--clients", "20", "--clients-per-round", "4",
            "--rounds", "3", "--eval-every", "3", "--batch-size", "16", "--out", outDir, .. extra]);
        Assert.That(code, Is.EqualTo(0), err);
        using var summary = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")));
        return new SmallRun(File.ReadAllBytes(Path.Combine(outDir, "model.safetensors")), summary.RootElement.Clone(), outDir, output);
    }
}

using System.Globalization;
using System.Text.Json;
using CommandLine;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Profiling;
using ZeroFL.Engine.Sparsity;

namespace ZeroFL.Cli.Commands;

/// <summary>Options of <c>zerofl profile</c>.</summary>
[Verb("profile", HelpText = "Run real training steps dense and with SWAT; report FLOPs, time and retained activation memory per layer.")]
public sealed class ProfileOptions : SwatOptions
{
    /// <summary>Model name.</summary>
    [Option("model", Default = "resnet18", HelpText = "Model: cnn, femnist-cnn or resnet18.")]
    public string Model { get; set; } = "resnet18";

    /// <summary>Sparsity.</summary>
    [Option("sparsity", Default = 0.9f, HelpText = "SWAT sparsity of the sparse run (fraction of weights and activations dropped).")]
    public float Sparsity { get; set; } = 0.9f;

    /// <summary>Batch size.</summary>
    [Option("batch", Default = 32, HelpText = "Mini-batch size.")]
    public int Batch { get; set; } = 32;

    /// <summary>Input size.</summary>
    [Option("input-size", HelpText = "Input height and width (default: 32 for resnet18, 28 otherwise).")]
    public int? InputSize { get; set; }

    /// <summary>Input channels.</summary>
    [Option("channels", HelpText = "Input channels (default: 3 for resnet18, 1 otherwise).")]
    public int? Channels { get; set; }

    /// <summary>Classes.</summary>
    [Option("classes", HelpText = "Classes (default: 62 for femnist-cnn, 10 otherwise).")]
    public int? Classes { get; set; }

    /// <summary>Measured steps.</summary>
    [Option("steps", Default = 3, HelpText = "Measurements per run; each times a top-K refresh step and a reuse step, weighted 1 : (period - 1).")]
    public int Steps { get; set; } = 3;

    /// <summary>Warm-up steps.</summary>
    [Option("warmup", Default = 1, HelpText = "Unmeasured steps before measuring.")]
    public int Warmup { get; set; } = 1;

    /// <summary>JSON output.</summary>
    [Option("json", Default = false, HelpText = "Print one JSON object instead of a table.")]
    public bool Json { get; set; }
}

/// <summary>The profiler.</summary>
public static class ProfileCommand
{
    /// <summary>Profiles and prints.</summary>
    public static int Run(ProfileOptions o)
    {
        if (!ModelCatalog.Names.Contains(o.Model))
        {
            throw new UsageException($"unknown --model '{o.Model}' (expected one of: {string.Join(", ", ModelCatalog.Names)})");
        }
        if (!(o.Sparsity > 0f && o.Sparsity < 1f))
        {
            throw new UsageException($"--sparsity must be in (0, 1), got {o.Sparsity}");
        }
        if (o.TopKPeriod < 1 || o.Batch < 1 || o.Steps < 1 || o.Warmup < 0)
        {
            throw new UsageException("--topk-period, --batch and --steps must be positive and --warmup not negative");
        }
        bool resnet = o.Model == "resnet18";
        o.CheckRecompute(o.Model);
        int size = o.InputSize ?? (resnet ? 32 : 28);
        int channels = o.Channels ?? (resnet ? 3 : 1);
        int classes = o.Classes ?? (o.Model == "femnist-cnn" ? 62 : 10);
        if (size < 4 || channels < 1 || classes < 2)
        {
            throw new UsageException("--input-size must be at least 4, --channels at least 1, --classes at least 2");
        }
        var spec = TrainCommand.ParseDevice(o.Device);
        using var device = ComputeDevice.Open(spec, Console.Error);
        var request = new ProfileRequest(o.Model, channels, size, classes, o.Batch, new SparsitySettings(o.Sparsity, o.TopKPeriod, o.SparseLayers), o.Steps, o.Warmup, Recompute: o.Recompute);
        var (dense, sparse) = StepProfile.Run(device, request);
        if (o.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(ToJson(device, o, dense, sparse)));
        }
        else
        {
            PrintTable(device, o, dense, sparse);
        }
        return 0;
    }

    private static Dictionary<string, object> ToJson(ComputeDevice device, ProfileOptions o, RunProfile dense, RunProfile sparse)
    {
        var layers = Rows(dense, sparse).Select(pair =>
        {
            var (d, s) = pair;
            var l = s ?? d!;
            return new Dictionary<string, object>
            {
                ["name"] = l.Name,
                ["kind"] = l.Kind,
                ["sparse"] = l.Sparse,
                ["sparse_kernels"] = l.SparseKernels,
                ["dense_flops"] = new[] { l.DenseFlops[0], l.DenseFlops[1], l.DenseFlops[2] },
                ["sparse_flops"] = new[] { l.SparseFlops[0], l.SparseFlops[1], l.SparseFlops[2] },
                ["dense_seconds"] = d is null ? Array.Empty<double>() : new[] { d.Seconds[0], d.Seconds[1], d.Seconds[2] },
                ["sparse_seconds"] = s is null ? Array.Empty<double>() : new[] { s.Seconds[0], s.Seconds[1], s.Seconds[2] },
                ["dense_forward_seconds"] = d?.ForwardSeconds ?? 0,
                ["dense_backward_seconds"] = d?.BackwardSeconds ?? 0,
                ["sparse_forward_seconds"] = s?.ForwardSeconds ?? 0,
                ["sparse_backward_seconds"] = s?.BackwardSeconds ?? 0,
                ["retained_bytes_dense"] = l.RetainedDenseBytes,
                ["retained_bytes_sparse"] = l.RetainedBytes,
            };
        }).ToList();
        var (sparseLayersDense, sparseLayersSparse) = SparseLayerSeconds(dense, sparse);
        return new Dictionary<string, object>
        {
            ["model"] = o.Model,
            ["device"] = device.Description,
            ["batch"] = o.Batch,
            ["sparsity"] = o.Sparsity,
            ["topk_period"] = o.TopKPeriod,
            ["recompute"] = o.Recompute,
            ["sparse_layer_rule"] = o.SparseLayers.ToString().ToLowerInvariant(),
            ["dense_train_flops"] = dense.DenseTrainFlops,
            ["sparse_train_flops"] = sparse.TrainFlops,
            ["flop_reduction"] = 1 - sparse.TrainFlops / dense.DenseTrainFlops,
            ["dense_step_seconds"] = dense.StepSeconds,
            ["sparse_step_seconds"] = sparse.StepSeconds,
            ["sparse_refresh_step_seconds"] = sparse.RefreshStepSeconds,
            ["sparse_reuse_step_seconds"] = sparse.ReuseStepSeconds,
            ["sparse_layers_dense_seconds"] = sparseLayersDense,
            ["sparse_layers_sparse_seconds"] = sparseLayersSparse,
            ["retained_activation_bytes_dense"] = dense.RetainedActivationBytes,
            ["retained_activation_bytes_sparse"] = sparse.RetainedActivationBytes,
            ["peak_workspace_bytes_dense"] = dense.PeakWorkspaceBytes,
            ["peak_workspace_bytes_sparse"] = sparse.PeakWorkspaceBytes,
            ["parameter_bytes"] = dense.ParameterBytes,
            ["host_syncs_per_step"] = sparse.HostSyncsPerStep,
            ["device_to_host_bytes_per_step"] = sparse.DeviceToHostBytesPerStep,
            ["host_syncs_per_step_dense"] = dense.HostSyncsPerStep,
            ["device_to_host_bytes_per_step_dense"] = dense.DeviceToHostBytesPerStep,
            ["dense_profiled_step_seconds"] = dense.ProfiledStepSeconds,
            ["sparse_profiled_step_seconds"] = sparse.ProfiledStepSeconds,
            ["dense_accounted_seconds"] = dense.AccountedSeconds,
            ["sparse_accounted_seconds"] = sparse.AccountedSeconds,
            ["peak_step_bytes_dense"] = dense.PeakStepBytes,
            ["peak_step_bytes_sparse"] = sparse.PeakStepBytes,
            ["seconds_by_kind_dense"] = ByKind(dense),
            ["seconds_by_kind_sparse"] = ByKind(sparse),
            ["layers"] = layers,
        };
    }

    /// <summary>The rows of both runs matched by (module, kind): every sparse row, then rows only the dense run has.</summary>
    private static List<(LayerProfile? Dense, LayerProfile? Sparse)> Rows(RunProfile dense, RunProfile sparse)
    {
        var denseRows = dense.Layers.ToDictionary(l => (l.Name, l.Kind));
        var sparseKeys = sparse.Layers.Select(l => (l.Name, l.Kind)).ToHashSet();
        return sparse.Layers.Select(l => (denseRows.GetValueOrDefault((l.Name, l.Kind)), (LayerProfile?)l))
            .Concat(dense.Layers.Where(l => !sparseKeys.Contains((l.Name, l.Kind))).Select(l => ((LayerProfile?)l, (LayerProfile?)null)))
            .ToList();
    }

    /// <summary>Seconds per step summed by op kind, forward and backward.</summary>
    private static Dictionary<string, double[]> ByKind(RunProfile run) =>
        run.Layers.GroupBy(l => l.Kind).ToDictionary(g => g.Key, g => new[] { g.Sum(l => l.ForwardSeconds), g.Sum(l => l.BackwardSeconds) });

    /// <summary>Seconds per step spent in the layers that are sparse in the sparse run, in both runs.</summary>
    private static (double Dense, double Sparse) SparseLayerSeconds(RunProfile dense, RunProfile sparse)
    {
        var names = sparse.Layers.Where(l => l.Sparse).Select(l => l.Name).ToHashSet();
        return (dense.Layers.Where(l => names.Contains(l.Name)).Sum(l => l.Seconds.Sum()),
                sparse.Layers.Where(l => names.Contains(l.Name)).Sum(l => l.Seconds.Sum()));
    }

    private static void PrintTable(ComputeDevice device, ProfileOptions o, RunProfile dense, RunProfile sparse)
    {
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine($"{o.Model}, batch {o.Batch}, sparsity {o.Sparsity}, top-k period {o.TopKPeriod}{(o.Recompute ? ", blocks recomputed in the backward" : "")}, {device.Description}");
        Console.WriteLine($"{"op",-26} {"kind",-9} {"dense GFLOP",11} {"sparse GFLOP",12} {"dense fwd/bwd ms",17} {"sparse fwd/bwd ms",17} {"kept KB",9} {"dense KB",9}");
        foreach (var (d, s) in Rows(dense, sparse))
        {
            var l = s ?? d!;
            string mark = l.Sparse ? (l.SparseKernels ? "*" : "+") : " ";
            Console.WriteLine(string.Format(c, "{0,-26} {1,-9} {2,11:F3} {3,12:F3} {4,8:F1}/{5,-8:F1} {6,8:F1}/{7,-8:F1} {8,9:F0} {9,9:F0}",
                l.Name + mark, l.Kind, l.DenseFlops.Sum() / 1e9, l.SparseFlops.Sum() / 1e9,
                (d?.ForwardSeconds ?? double.NaN) * 1e3, (d?.BackwardSeconds ?? double.NaN) * 1e3,
                (s?.ForwardSeconds ?? double.NaN) * 1e3, (s?.BackwardSeconds ?? double.NaN) * 1e3,
                l.RetainedBytes / 1024.0, l.RetainedDenseBytes / 1024.0));
        }
        Console.WriteLine("per kind, ms per step (forward/backward):");
        var denseKinds = ByKind(dense);
        foreach (var (kind, seconds) in ByKind(sparse).Concat(denseKinds.Where(k => !sparse.Layers.Any(l => l.Kind == k.Key))))
        {
            var d = denseKinds.GetValueOrDefault(kind);
            Console.WriteLine(string.Format(c, "  {0,-10} dense {1,8:F1}/{2,-8:F1} sparse {3,8:F1}/{4,-8:F1}",
                kind, (d?[0] ?? double.NaN) * 1e3, (d?[1] ?? double.NaN) * 1e3, seconds[0] * 1e3, seconds[1] * 1e3));
        }
        Console.WriteLine(string.Format(c, "rows add up to: dense {0:F3} s of a profiled step of {1:F3} s ({2:P1}), sparse {3:F3} s of {4:F3} s ({5:P1})",
            dense.AccountedSeconds, dense.ProfiledStepSeconds, dense.AccountedSeconds / dense.ProfiledStepSeconds,
            sparse.AccountedSeconds, sparse.ProfiledStepSeconds, sparse.AccountedSeconds / sparse.ProfiledStepSeconds));
        var (sparseLayersDense, sparseLayersSparse) = SparseLayerSeconds(dense, sparse);
        Console.WriteLine("(* sparse kernels, + sparse by masking with dense kernels)");
        Console.WriteLine(string.Format(c, "training FLOPs per step: dense {0:F2} G, sparse {1:F2} G ({2:P1} fewer)", dense.DenseTrainFlops / 1e9, sparse.TrainFlops / 1e9, 1 - sparse.TrainFlops / dense.DenseTrainFlops));
        Console.WriteLine(string.Format(c, "step time: dense {0:F3} s, sparse {1:F3} s; sparse layers only: dense {2:F3} s, sparse {3:F3} s ({4:F2}x)", dense.StepSeconds, sparse.StepSeconds, sparseLayersDense, sparseLayersSparse, sparseLayersDense / sparseLayersSparse));
        Console.WriteLine(string.Format(c, "(sparse step averaged over the top-k period: refresh step {0:F3} s once, reuse step {1:F3} s {2} times)", sparse.RefreshStepSeconds, sparse.ReuseStepSeconds, o.TopKPeriod - 1));
        Console.WriteLine(string.Format(c, "activations kept for backward: dense {0:F1} MB, sparse {1:F1} MB ({2:P1})", dense.RetainedActivationBytes / 1e6, sparse.RetainedActivationBytes / 1e6, (double)sparse.RetainedActivationBytes / dense.RetainedActivationBytes));
        Console.WriteLine(string.Format(c, "peak step memory (arenas' high-water, temporaries freed after their last reader, + scratch): dense {0:F1} MB, sparse {1:F1} MB ({2:P1}); parameters+gradients+momentum {3:F1} MB on top",
            dense.PeakStepBytes / 1e6, sparse.PeakStepBytes / 1e6, (double)sparse.PeakStepBytes / dense.PeakStepBytes, dense.ParameterBytes / 1e6));
        Console.WriteLine(string.Format(c, "host syncs per step (a step that does not read its loss; each one a device synchronisation on a GPU): dense {0:F1}, sparse {1:F1}; device-to-host bytes per step: dense {2:F0}, sparse {3:F0}",
            dense.HostSyncsPerStep, sparse.HostSyncsPerStep, dense.DeviceToHostBytesPerStep, sparse.DeviceToHostBytesPerStep));
    }
}

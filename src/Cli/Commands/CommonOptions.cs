using CommandLine;
using ZeroFL.Engine.Sparsity;

namespace ZeroFL.Cli.Commands;

/// <summary>Options every verb that runs kernels takes.</summary>
public abstract class DeviceOptions
{
    /// <summary>Device.</summary>
    [Option("device", Default = "auto", HelpText = "auto, cpu, cuda or opencl, optionally :index (e.g. cuda:1).")]
    public string Device { get; set; } = "auto";
}

/// <summary>Options of verbs that train with SWAT sparsity.</summary>
public abstract class SwatOptions : DeviceOptions
{
    /// <summary>Which layers are sparse.</summary>
    [Option("sparse-layers", Default = SparseLayerRule.Paper, HelpText = "Sparse layers: paper (ZeroFL's rule) or all (also ResNet-18's 1x1 shortcut convolutions).")]
    public SparseLayerRule SparseLayers { get; set; } = SparseLayerRule.Paper;

    /// <summary>Top-K period.</summary>
    [Option("topk-period", Default = 1, HelpText = "Recompute exact top-K thresholds every P training steps, reusing them in between (1 = exact every step).")]
    public int TopKPeriod { get; set; } = 1;

    /// <summary>Activation recomputation.</summary>
    [Option("recompute", Default = false, HelpText = "Recompute each ResNet-18 basic block's forward in the backward instead of keeping its activations: a lower peak memory, the same results, one more forward of each block.")]
    public bool Recompute { get; set; }

    /// <summary>Rejects --recompute for a model without segments to recompute.</summary>
    internal void CheckRecompute(string model)
    {
        if (Recompute && model != "resnet18")
        {
            throw new UsageException($"--recompute recomputes ResNet-18's basic blocks; model {model} has none");
        }
    }
}

/// <summary>Options of verbs that train a model on a dataset.</summary>
public abstract class DataOptions : SwatOptions
{
    /// <summary>Dataset name.</summary>
    [Option("dataset", Default = "fashion-mnist", HelpText = "Dataset: fashion-mnist, mnist, cifar10, femnist or speech-commands.")]
    public string Dataset { get; set; } = "fashion-mnist";

    /// <summary>Where the dataset files are.</summary>
    [Option("data-dir", HelpText = "Directory with the dataset files (default: the Debian package's directory).")]
    public string? DataDir { get; set; }

    /// <summary>Model name.</summary>
    [Option("model", Default = "cnn", HelpText = "Model: cnn, femnist-cnn or resnet18.")]
    public string Model { get; set; } = "cnn";

    /// <summary>Seed.</summary>
    [Option("seed", Default = 1, HelpText = "Seed of initialisation, data partition, sampling and shuffling.")]
    public int Seed { get; set; } = 1;

    /// <summary>Suppress progress lines.</summary>
    [Option("quiet", Default = false, HelpText = "Print only the final result.")]
    public bool Quiet { get; set; }
}

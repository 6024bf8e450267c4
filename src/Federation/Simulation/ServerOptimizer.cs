using ILGPU;
using ILGPU.Runtime;
using ZeroFL.Engine.Devices;
using ZeroFL.Kernels;

namespace ZeroFL.Federation.Simulation;

/// <summary>The server's optimizer, by Flower's strategy names.</summary>
public enum ServerOptimizerKind
{
    /// <summary>The averaged model (or average difference) is applied as it is: plain FedAvg.</summary>
    FedAvg,

    /// <summary>Adam on the pseudo-gradient, with Flower's bias-corrected step size.</summary>
    FedAdam,

    /// <summary>Yogi on the pseudo-gradient.</summary>
    FedYogi,

    /// <summary>Adagrad on the pseudo-gradient (Flower: no first-moment decay, beta1 = 0).</summary>
    FedAdagrad,
}

/// <summary>Names of <see cref="ServerOptimizerKind"/> as the command line spells them.</summary>
public static class ServerOptimizers
{
    /// <summary>Every name, in enum order.</summary>
    public static IReadOnlyList<string> Names { get; } = ["fedavg", "fedadam", "fedyogi", "fedadagrad"];

    /// <summary>The command-line name.</summary>
    public static string Name(this ServerOptimizerKind kind) => Names[(int)kind];

    /// <summary>Parses a command-line name (lower case).</summary>
    public static bool TryParse(string? name, out ServerOptimizerKind kind)
    {
        int index = name is null ? -1 : Names.ToList().IndexOf(name);
        kind = index < 0 ? ServerOptimizerKind.FedAvg : (ServerOptimizerKind)index;
        return index >= 0;
    }
}

/// <summary>
/// The server optimizer of a run. For the adaptive kinds, each round's pseudo-gradient
/// d = (FedAvg's new model) - (global model), i.e. the average difference for the diff strategies,
/// drives m = beta1 m + (1 - beta1) d, v (Adam / Yogi / Adagrad) and
/// x = x + eta_t m / (sqrt(v) + tau), as Flower's FedOpt strategies do
/// (flwr.serverapp.strategy FedAdam / FedYogi / FedAdagrad, 2025; the same formulas as the
/// bias-corrected flwr.server.strategy versions of Flower 1.x): m and v start at zero (not tau^2
/// as in Reddi et al.'s Algorithm 2), and only FedAdam corrects its step for bias,
/// eta_t = eta sqrt(1 - beta2^(t+1)) / (1 - beta1^(t+1)) with t the 1-based round (Flower's
/// exponent t + 1, one ahead of Kingma and Ba's alpha_t).
/// </summary>
/// <param name="Kind">Which optimizer.</param>
/// <param name="LearningRate">Server learning rate eta.</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay (unused by FedAdagrad).</param>
/// <param name="Tau">Adaptivity constant.</param>
public sealed record ServerOptimizerSettings(ServerOptimizerKind Kind, double LearningRate, double Beta1, double Beta2, double Tau)
{
    /// <summary>Plain FedAvg (no server state).</summary>
    public static ServerOptimizerSettings FedAvg { get; } = new(ServerOptimizerKind.FedAvg, 1, 0, 0, 0);

    /// <summary>Whether the server keeps m and v (every kind but FedAvg).</summary>
    public bool IsAdaptive => Kind != ServerOptimizerKind.FedAvg;

    /// <summary>
    /// Flower's defaults (flwr.serverapp.strategy, 2025): FedAdam eta 0.1, beta1 0.9, beta2 0.99,
    /// tau 1e-3; FedYogi eta 0.01, beta1 0.9, beta2 0.99, tau 1e-3; FedAdagrad eta 0.1, beta1 0,
    /// tau 1e-3. (Flower 1.x's flwr.server.strategy had tau 1e-9 for FedAdam and FedAdagrad.)
    /// </summary>
    public static ServerOptimizerSettings Defaults(ServerOptimizerKind kind) => kind switch
    {
        ServerOptimizerKind.FedAdam => new(kind, 0.1, 0.9, 0.99, 1e-3),
        ServerOptimizerKind.FedYogi => new(kind, 0.01, 0.9, 0.99, 1e-3),
        ServerOptimizerKind.FedAdagrad => new(kind, 0.1, 0, 0, 1e-3),
        _ => FedAvg,
    };

    /// <summary>Throws <see cref="ArgumentException"/> with one line naming the first bad value (FedAvg takes none).</summary>
    public void Validate()
    {
        if (!IsAdaptive)
        {
            return;
        }
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate))
        {
            throw new ArgumentException($"the server learning rate must be positive and finite, got {LearningRate}");
        }
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1))
        {
            throw new ArgumentException($"the server betas must be in [0, 1), got beta1 {Beta1} and beta2 {Beta2}");
        }
        if (!(Tau > 0) || !double.IsFinite(Tau))
        {
            throw new ArgumentException($"the server tau must be positive and finite (0 gives 0/0 where nothing moved), got {Tau}");
        }
    }

    /// <summary>The step size of round <paramref name="round"/> (1-based): eta, bias-corrected for FedAdam.</summary>
    public double StepSize(int round) => Kind == ServerOptimizerKind.FedAdam
        ? LearningRate * Math.Sqrt(1 - Math.Pow(Beta2, round + 1.0)) / (1 - Math.Pow(Beta1, round + 1.0))
        : LearningRate;

    /// <summary>The kernel's settings for round <paramref name="round"/>.</summary>
    public ServerStep StepFor(int round, bool aggregateIsDifference) => new(
        Kind switch
        {
            ServerOptimizerKind.FedAdam => SecondMomentRule.Adam,
            ServerOptimizerKind.FedYogi => SecondMomentRule.Yogi,
            ServerOptimizerKind.FedAdagrad => SecondMomentRule.Adagrad,
            _ => throw new InvalidOperationException("FedAvg takes no server step"),
        },
        (float)StepSize(round), (float)Beta1, (float)Beta2, (float)Tau, aggregateIsDifference);
}

/// <summary>
/// The adaptive server optimizer's state on the device: m and v, one float each per trainable
/// model value, in one block allocated once and zeroed. It steps the trainable values only (the
/// prefix of a store's value block); batch-norm running statistics are not gradients and stay
/// plain-averaged (<see cref="DeviceAggregator.Finish(ArrayView{float}, Uplink.UplinkStrategy, ServerOptimizer?, int)"/>).
/// </summary>
public sealed class ServerOptimizer : IDisposable
{
    private readonly ComputeDevice device;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> state;

    /// <summary>Allocates zero moments for the trainable values of <paramref name="model"/>, which must come first in its value block.</summary>
    public ServerOptimizer(ComputeDevice device, ServerOptimizerSettings settings, UplinkModel model)
    {
        settings.Validate();
        if (!settings.IsAdaptive)
        {
            throw new ArgumentException("FedAvg keeps no server optimizer state");
        }
        this.device = device;
        Settings = settings;
        Length = model.Parameters.Where(p => p.Trainable).Sum(p => p.Length);
        if (model.Parameters.Any(p => p.Trainable == p.Offset >= Length))
        {
            throw new ArgumentException("the server optimizer needs the trainable values before the running statistics");
        }
        state = device.Accelerator.Allocate1D<float>(Math.Max(1, 2 * Length));
        device.Kernels.Launch.Zero(state.View.AsContiguous());
    }

    /// <summary>The settings.</summary>
    public ServerOptimizerSettings Settings { get; }

    /// <summary>Trainable values stepped (the prefix of the model's value block).</summary>
    public long Length { get; }

    /// <summary>Device bytes held.</summary>
    public long Bytes => state.Length * sizeof(float);

    private ArrayView<float> FirstMoment => state.View.SubView(0, Length);

    private ArrayView<float> SecondMoment => state.View.SubView(Length, Length);

    /// <summary>
    /// Steps <paramref name="model"/> (the trainable prefix, <see cref="Length"/> values) towards
    /// <paramref name="aggregate"/> (FedAvg's averaged model, or with
    /// <paramref name="aggregateIsDifference"/> the average difference) for 1-based <paramref name="round"/>.
    /// </summary>
    public void Step(ArrayView<float> model, ArrayView<float> aggregate, bool aggregateIsDifference, int round)
    {
        if (round < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(round), $"rounds are 1-based, got {round}");
        }
        device.Kernels.ServerOptimizer.Step(model, aggregate, FirstMoment, SecondMoment, Settings.StepFor(round, aggregateIsDifference));
    }

    /// <summary>The state for a checkpoint: m then v (2 <see cref="Length"/> floats).</summary>
    public float[] Download()
    {
        var host = new float[2 * Length];
        device.Kernels.Launch.ReadBack(state.View.SubView(0, host.Length), host);
        return host;
    }

    /// <summary>Restores the state from <see cref="Download"/>'s form.</summary>
    public void Upload(float[] values)
    {
        if (values.Length != 2 * Length)
        {
            throw new ArgumentException($"server optimizer state: {values.Length} values, expected {2 * Length}");
        }
        device.Kernels.Launch.Upload(values.AsSpan(), state.View.SubView(0, values.Length));
    }

    /// <inheritdoc />
    public void Dispose() => state.Dispose();
}

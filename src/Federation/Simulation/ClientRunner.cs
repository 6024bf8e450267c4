using ILGPU.Runtime;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Memory;
using ZeroFL.Engine.Models;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Engine.Training;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// A training slot: one client model with its trainer, workspace and uplink encoder, reused for
/// every client it runs. A client is created on demand from its small state (an index list) by
/// copying the global values in, so device memory grows with the slots, never with the clients.
/// </summary>
public sealed class ClientRunner : IDisposable
{
    private readonly FederatedOptions options;
    private readonly Model model;
    private readonly Trainer trainer;
    private readonly DeviceUplinkEncoder encoder;
    private readonly UplinkModel uplink;

    /// <summary>Builds the slot's model (same architecture as the global one) and scratch.</summary>
    public ClientRunner(ComputeDevice device, FederatedOptions options, int[] inputShape, int classes, UplinkModel uplink, Workspace workspace)
    {
        this.options = options;
        model = ModelCatalog.Create(device, options.Model, inputShape[0], inputShape[1], classes, options.Seed);
        SwatRules.Apply(model, options.Sparsity);
        trainer = new Trainer(model, new Sgd(1f, options.Momentum, options.WeightDecay), workspace) { RecomputesSegments = options.RecomputeSegments };
        encoder = new DeviceUplinkEncoder(device, uplink, options.Uplink);
        this.uplink = uplink;
    }

    /// <summary>Device bytes of the slot (model, optimizer state, encoder scratch; the workspace is shared).</summary>
    public long Bytes => model.Store.Bytes + encoder.Bytes;

    /// <summary>
    /// Flower's Fit: trains client <paramref name="shard"/> from the global values for the round's
    /// local epochs at <paramref name="learningRate"/> and returns its upload.
    /// </summary>
    public ClientResult Fit(ClientShard shard, DeviceDataset data, ILGPU.ArrayView<float> globalValues, float learningRate, int round) =>
        Fit(shard.Id, shard.Train, data, globalValues, learningRate, round);

    /// <summary>Flower's Fit for client <paramref name="clientId"/> given by its training indices <paramref name="train"/> (ascending, into <paramref name="data"/>).</summary>
    public ClientResult Fit(int clientId, int[] train, DeviceDataset data, ILGPU.ArrayView<float> globalValues, float learningRate, int round)
    {
        if (train.Length == 0)
        {
            return ClientResult.Failed(clientId, FailureKind.TrainingFailed, "no training samples");
        }
        globalValues.CopyTo(model.Store.Values);
        model.Store.ZeroMomentum();
        SwatRules.ResetThresholds(model);
        trainer.Optimizer.LearningRate = learningRate;
        trainer.Flops.Clear();
        int seed = StepSeed(options.Seed, round, clientId);
        var sampler = new BatchSampler(train, options.BatchSize, seed);
        trainer.AugmentationSeed = seed ^ 0x5A17;
        double lossSum = 0;
        int steps = 0;
        for (int epoch = 0; epoch < options.LocalEpochs; epoch++)
        {
            sampler.StartEpoch(epoch);
            for (int b = 0; b < sampler.BatchCount; b++)
            {
                float loss = trainer.Step(data, sampler.Batch(b));
                if (!float.IsFinite(loss))
                {
                    return ClientResult.Failed(clientId, FailureKind.NonFiniteUpdate, $"non-finite training loss {loss}", train.Length, new FitMetrics(loss, trainer.Flops.Sparse, trainer.Flops.Dense));
                }
                lossSum += loss;
                steps++;
            }
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var upload = encoder.Encode(clientId, train.Length, model.Store.Values, globalValues);
        int bad = upload.Layers.ToList().FindIndex(l => l.HasNonFiniteValue());
        if (bad >= 0)
        {
            // NaN or infinity after training, or a value beyond the range of 16-bit upload values
            // (fp16: |x| of 65520 or more): the client reports it instead of sending it.
            string width = upload.Layers[bad].ValueFormat.Name();
            return ClientResult.Failed(clientId, FailureKind.NonFiniteUpdate, $"non-finite update: layer {uplink.Layout.Layers[bad].Name} has a value that is not finite in {width}",
                train.Length, new FitMetrics(lossSum / steps, trainer.Flops.Sparse, trainer.Flops.Dense, clock.Elapsed.TotalSeconds));
        }
        return ClientResult.Succeeded(clientId, upload, train.Length, new FitMetrics(lossSum / steps, trainer.Flops.Sparse, trainer.Flops.Dense, clock.Elapsed.TotalSeconds));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        encoder.Dispose();
        trainer.Dispose();
        model.Dispose();
    }

    /// <summary>A deterministic seed per (run seed, round, client); HashCode is randomised per process, so not used.</summary>
    private static int StepSeed(int seed, int round, int client)
    {
        ulong z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)round * 0xBF58476D1CE4E5B9UL + (ulong)client * 0x94D049BB133111EBUL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)(z ^ (z >> 31));
    }
}

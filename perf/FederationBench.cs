using System.Globalization;
using System.Text.Json;
using ZeroFL.Data;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Sparsity;
using ZeroFL.Federation;
using ZeroFL.Federation.Partitioning;
using ZeroFL.Federation.Simulation;
using ZeroFL.Federation.Uplink;

namespace ZeroFL.Perf;

/// <summary>
/// The federation's own costs on the embedded main job (Fashion-MNIST, small CNN, LDA alpha 1.0,
/// SWAT 0.9, topk-weights, r_mask 0.1): the share of a round's wall time spent on server work
/// (validating, staging and aggregating uploads) and on clients' upload encoding, and the device
/// memory with 10 versus 100 clients per round out of 1,000. One JSON object per benchmark.
/// </summary>
public sealed class FederationBench(ComputeDevice device, bool quick)
{
    /// <summary>Runs a few rounds of the main job and reports where the time goes.</summary>
    public void RoundCost(TrainTestSplit data)
    {
        int rounds = quick ? 2 : 5;
        // One round more than is run, with evaluation only at the end: no measured round evaluates.
        var options = MainJob(100, 10, rounds + 1);
        var partition = DirichletPartitioner.Create(data.Train, 100, 1.0, new PartitionOptions(1));
        using var server = new FederatedServer(device, options, data.Train, data.Test, partition);
        double seconds = 0, serverSeconds = 0, encode = 0;
        for (int r = 1; r <= rounds; r++)
        {
            var m = server.RunRound(r);
            seconds += m.Seconds;
            serverSeconds += m.ServerSeconds;
            encode += m.EncodeSeconds;
        }
        Print(new Dictionary<string, object>
        {
            ["name"] = "federation_round_main_job",
            ["rounds"] = rounds,
            ["round_seconds"] = seconds / rounds,
            ["server_seconds"] = serverSeconds / rounds,
            ["encode_seconds"] = encode / rounds,
            ["server_share"] = serverSeconds / seconds,
            ["server_and_encode_share"] = (serverSeconds + encode) / seconds,
            ["device"] = device.Description,
        });
    }

    /// <summary>Device memory of 1,000 clients with 10 and with 100 sampled per round.</summary>
    public void Memory(TrainTestSplit data)
    {
        var partition = DirichletPartitioner.Create(data.Train, 1000, 1.0, new PartitionOptions(1));
        long BytesFor(int perRound)
        {
            using var server = new FederatedServer(device, MainJob(1000, perRound, 2), data.Train, data.Test, partition);
            server.RunRound(1);
            return server.DeviceBytes;
        }
        long ten = BytesFor(10), hundred = BytesFor(100);
        Print(new Dictionary<string, object>
        {
            ["name"] = "federation_device_memory_1000_clients",
            ["bytes_10_per_round"] = ten,
            ["bytes_100_per_round"] = hundred,
            ["ratio"] = (double)hundred / ten,
            ["concurrent_slots"] = 1,
            ["device"] = device.Description,
        });
    }

    private static FederatedOptions MainJob(int clients, int perRound, int rounds) => new(
        "cnn", clients, ClientSampling.Fixed(perRound), rounds, LocalEpochs: 1, BatchSize: 32,
        new ExponentialDecay(0.05, 0.01, rounds), 0.9f, 5e-4f, new UplinkSettings(UplinkStrategy.TopKWeights, 0.9, 0.1),
        new SparsitySettings(0.9f), PartitionScheme.Lda, 1.0, EvaluateEvery: rounds, Seed: 1);

    private static void Print(Dictionary<string, object> row) =>
        Console.WriteLine(JsonSerializer.Serialize(row, new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }));
}

using ILGPU;
using ZeroFL.Engine.Training;
using ZeroFL.Federation.Randomness;

namespace ZeroFL.Federation.Simulation;

/// <summary>
/// One client's Fit on a training slot, with the run's injected faults (drawn per seed, round,
/// attempt and client, so every backend injects the same ones): training that throws, or an upload
/// corrupted on its way to the server. Training errors become a result with no upload.
/// </summary>
public static class ClientFit
{
    /// <summary>Trains client <paramref name="clientId"/> (its training indices <paramref name="train"/>) from <paramref name="globalValues"/>.</summary>
    public static ClientResult Run(ClientRunner runner, int clientId, int[] train, DeviceDataset data, ArrayView<float> globalValues, FitInstructions instructions, FederatedOptions options)
    {
        var fault = Draw(options, instructions.Round, instructions.Attempt, clientId);
        ClientResult result;
        try
        {
            result = fault == Fault.TrainingThrows
                ? throw new InvalidOperationException("injected fault: local training threw")
                : runner.Fit(clientId, train, data, globalValues, instructions.LearningRate, instructions.Round);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            result = ClientResult.Failed(clientId, FailureKind.TrainingFailed, e.Message);
        }
        if (fault == Fault.CorruptUpload && result.Upload is { } upload)
        {
            result = result with { Upload = UploadCorruption.Apply(upload, instructions.Round, instructions.Attempt, options.Seed) };
        }
        return result;
    }

    private enum Fault
    {
        None,
        TrainingThrows,
        CorruptUpload,
    }

    private static Fault Draw(FederatedOptions options, int round, int attempt, int client)
    {
        var faults = options.Faults;
        if (faults.ClientFailureRate == 0 && faults.CorruptUploadRate == 0)
        {
            return Fault.None;
        }
        var random = SplitMix64.For(options.Seed, RandomStream.FaultInjection, round, (long)attempt << 32 | (uint)client);
        if (random.NextDouble() < faults.ClientFailureRate)
        {
            return Fault.TrainingThrows;
        }
        return random.NextDouble() < faults.CorruptUploadRate ? Fault.CorruptUpload : Fault.None;
    }
}

using ZeroFL.Engine.Training;
using ZeroFL.Engine.Modules;
using ZeroFL.Federation.Partitioning;

namespace ZeroFL.Federation.Simulation;

/// <summary>The in-process backend: every client trains in turn on one <see cref="ClientRunner"/> slot of this process's device.</summary>
/// <param name="runner">The training slot.</param>
/// <param name="train">The training set on the device.</param>
/// <param name="partition">The clients' index lists.</param>
/// <param name="options">The run's options (faults included).</param>
public sealed class InProcessFit(ClientRunner runner, DeviceDataset train, Partition partition, FederatedOptions options) : IFitBackend
{
    /// <inheritdoc />
    public IEnumerable<ClientResult> Fit(FitInstructions instructions, ParameterStore global)
    {
        foreach (int id in instructions.Clients)
        {
            yield return ClientFit.Run(runner, id, partition.Clients[id].Train, train, global.Values, instructions, options);
        }
    }
}

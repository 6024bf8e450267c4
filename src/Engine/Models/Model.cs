using ZeroFL.Engine.Autograd;
using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Models;

/// <summary>
/// A network bound to its parameters on one device: the module tree plus the single
/// <see cref="ParameterStore"/> holding values, gradients and momentum.
/// </summary>
public sealed class Model : IDisposable
{
    /// <summary>Collects the network's parameters and allocates and initialises them from <paramref name="seed"/>.</summary>
    public Model(ComputeDevice device, string name, Module network, int[] inputShape, int classes, int seed)
    {
        Device = device;
        Name = name;
        Network = network;
        InputShape = (int[])inputShape.Clone();
        Classes = classes;
        Store = new ParameterStore(device, network.CollectParameters(), seed);
    }

    /// <summary>The device.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Catalogue name ("cnn", "femnist-cnn", "resnet18").</summary>
    public string Name { get; }

    /// <summary>The module tree.</summary>
    public Module Network { get; }

    /// <summary>Shape of one sample: [channels, height, width].</summary>
    public int[] InputShape { get; }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }

    /// <summary>
    /// Whether the network has segments a tape can recompute in the backward (ResNet-18's basic
    /// blocks; see <see cref="Tape.RecomputesSegments"/>).
    /// </summary>
    public bool HasSegments => Network.Walk().Any(m => m.Module.IsSegment);

    /// <summary>Parameters on the device.</summary>
    public ParameterStore Store { get; }

    /// <summary>Logits [batch, classes] for input [batch, channels, height, width].</summary>
    public Tensor Forward(Tape tape, Tensor input)
    {
        if (input.Shape.Length != 4 || !input.Shape.AsSpan(1).SequenceEqual(InputShape))
        {
            throw new ArgumentException($"model {Name} expects input [batch, {string.Join(", ", InputShape)}], got {input}");
        }
        return Network.Forward(tape, input);
    }

    /// <summary>Frees the parameters and the SWAT layers' device state.</summary>
    public void Dispose()
    {
        Sparsity.SwatRules.Release(this);
        Store.Dispose();
    }
}

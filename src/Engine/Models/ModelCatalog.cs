using ZeroFL.Engine.Devices;
using ZeroFL.Engine.Modules;

namespace ZeroFL.Engine.Models;

/// <summary>The models the CLI can build, by name.</summary>
public static class ModelCatalog
{
    /// <summary>Names accepted by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["cnn", "femnist-cnn", "resnet18"];

    /// <summary>Builds the untrained module tree for inputs [channels, size, size].</summary>
    public static Module Build(string name, int channels, int size, int classes) => name switch
    {
        "cnn" => new SmallCnn(channels, size, classes),
        "femnist-cnn" => new FemnistCnn(channels, size, classes),
        "resnet18" => new ResNet18(channels, classes),
        _ => throw new ArgumentException($"unknown model '{name}' (expected one of: {string.Join(", ", Names)})"),
    };

    /// <summary>Builds the model on <paramref name="device"/> with parameters initialised from <paramref name="seed"/>.</summary>
    public static Model Create(ComputeDevice device, string name, int channels, int size, int classes, int seed)
    {
        if (channels <= 0 || size <= 0 || classes <= 1)
        {
            throw new ArgumentException($"invalid model shape: {channels} channels, size {size}, {classes} classes");
        }
        return new Model(device, name, Build(name, channels, size, classes), [channels, size, size], classes, seed);
    }
}

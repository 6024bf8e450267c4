using ZeroFL.Engine.Autograd;

namespace ZeroFL.Engine.Modules;

/// <summary>
/// A network building block: declares its parameters and children, and maps an input tensor to an
/// output tensor by calling ops on the tape. Modules hold no device memory of their own.
/// </summary>
public abstract class Module
{
    private readonly List<Parameter> parameters = new();
    private readonly List<(string Name, Module Module)> children = new();

    /// <summary>Dotted path of this module in its model ("layer1.0.conv1"), set when parameters are collected.</summary>
    public string Path { get; private set; } = string.Empty;

    /// <summary>
    /// Runs the module; ops record their backward on <paramref name="tape"/>. The caller owns the
    /// input and the output; the module releases (<see cref="Tape.Release"/>) every other tensor it
    /// made once its last forward reader has run.
    /// </summary>
    public abstract Tensor Forward(Tape tape, Tensor input);

    /// <summary>
    /// True when <see cref="Forward"/> runs as one segment of the tape (<see cref="Tape.Checkpoint"/>),
    /// recomputed in the backward when <see cref="Tape.RecomputesSegments"/> is on.
    /// </summary>
    public virtual bool IsSegment => false;

    /// <summary>Every parameter of this module and its children, named with dotted paths.</summary>
    public IReadOnlyList<Parameter> CollectParameters()
    {
        var all = new List<Parameter>();
        Collect(string.Empty, all);
        return all;
    }

    /// <summary>Every module below this one (depth first, this one first), with its dotted path.</summary>
    public IEnumerable<(string Path, Module Module)> Walk(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in children)
        {
            foreach (var item in child.Walk(Join(prefix, name)))
            {
                yield return item;
            }
        }
    }

    /// <summary>Declares a parameter of this module.</summary>
    protected Parameter AddParameter(string name, int[] shape, ParameterInit init, int fanIn, ParameterRole role)
    {
        var p = new Parameter(name, shape, init, fanIn, role);
        parameters.Add(p);
        return p;
    }

    /// <summary>Declares a child module.</summary>
    protected T AddChild<T>(string name, T module)
        where T : Module
    {
        children.Add((name, module));
        return module;
    }

    private void Collect(string prefix, List<Parameter> into)
    {
        Path = prefix;
        foreach (var p in parameters)
        {
            p.FullName = Join(prefix, p.Name);
            into.Add(p);
        }
        foreach (var (name, child) in children)
        {
            child.Collect(Join(prefix, name), into);
        }
    }

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;
}
